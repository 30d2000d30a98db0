"""Tandem's benchmark: `python -m bench` measures the platform on loopback and writes a table."""
