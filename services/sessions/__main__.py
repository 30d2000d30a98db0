"""Entry point: `python -m services.sessions [serve|migrate]`."""

from services.sessions.server import build_spec
from services.common.entry import main

if __name__ == "__main__":
    main("sessions", build_spec)
