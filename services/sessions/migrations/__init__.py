"""Numbered plain-SQL migrations of the sessions schema."""
