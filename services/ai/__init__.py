"""AI review: jobs producing findings on pull requests and the live document."""
