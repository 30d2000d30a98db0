"""Numbered plain-SQL migrations of the auth schema."""
