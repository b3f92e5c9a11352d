"""Orchestration: read a case once, run the pure core on it, hand typed results on."""
