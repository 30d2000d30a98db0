"""Local stand-in for OpenAI Chat Completions that answers with deterministic review findings."""
