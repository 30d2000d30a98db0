"""`make soak`: mixed traffic for a long time; zero errors, steady latency, flat memory."""
