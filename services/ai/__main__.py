"""Entry point: `python -m services.ai [serve|migrate]`."""

if __name__ == "__main__":
    # Imported here, not at the top: the analyzer's worker processes (spawned)
    # import this module as their main, and must not load gRPC and the service
    # for nothing (it would double each worker's memory).
    from services.ai.server import build_spec
    from services.common.entry import main

    main("ai", build_spec)
