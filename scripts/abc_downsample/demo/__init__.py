"""Synthetic releases in the real bucket format, for the offline demos and the tests (never
imported by a job)."""
