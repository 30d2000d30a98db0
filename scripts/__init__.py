"""Developer tooling for running and testing Tandem on one machine."""
