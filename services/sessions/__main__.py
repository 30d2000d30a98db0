"""Entry point: `python -m services.sessions [serve|migrate]`."""

from services.common.entry import main
from services.sessions.server import build_spec

if __name__ == "__main__":
    main("sessions", build_spec)
