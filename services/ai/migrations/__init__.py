"""Numbered plain-SQL migrations of the ai schema."""
