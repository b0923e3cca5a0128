"""The pure core: bytes and values in, bytes and values out.

No trio, Qt, sqlite, sockets or open() here (import-linter and
tests/core/test_purity.py check it), so every format can be tested
exhaustively and fast.
"""
