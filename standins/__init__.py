"""Real HTTP servers that stand in for outside services in local runs and tests."""
