"""Entry point: `python -m services.review [serve|migrate]`."""

from services.review.server import build_spec
from services.common.entry import main

if __name__ == "__main__":
    main("review", build_spec)
