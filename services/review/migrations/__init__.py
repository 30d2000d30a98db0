"""Numbered plain-SQL migrations of the review schema."""
