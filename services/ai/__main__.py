"""Entry point: `python -m services.ai [serve|migrate]`."""

from services.ai.server import build_spec
from services.common.entry import main

if __name__ == "__main__":
    main("ai", build_spec)
