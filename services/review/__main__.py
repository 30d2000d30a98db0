"""Entry point: `python -m services.review [serve|migrate]`."""

from services.common.entry import main
from services.review.server import build_spec

if __name__ == "__main__":
    main("review", build_spec)
