"""Review: pull requests from GitHub, line threads, verdicts, publishing, webhooks."""
