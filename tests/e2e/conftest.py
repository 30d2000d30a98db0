"""End-to-end fixtures: `platform` (the whole platform as real processes) lives in tests/conftest.py
so that every folder using it shares one instance per run."""
