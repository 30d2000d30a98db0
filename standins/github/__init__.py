"""A local stand-in for GitHub's OAuth web flow and REST API v3, for development and tests."""

from standins.github.app import create_app
from standins.github.config import StandinConfig

__all__ = ["StandinConfig", "create_app"]
