"""Entry point: `python -m services.auth [serve|migrate]`."""

from services.auth.server import build_spec
from services.common.entry import main

if __name__ == "__main__":
    main("auth", build_spec)
