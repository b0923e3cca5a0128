"""Benchmarks: python -m p2pbackup.bench core --json."""
