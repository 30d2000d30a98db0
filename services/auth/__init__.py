"""Identity: GitHub sign-in, users, signing keys and tokens."""
