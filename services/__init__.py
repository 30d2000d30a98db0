"""Tandem backend services: auth, sessions, review, ai, and the kit they share."""
