"""Process-wide tuning, applied once at start-up by every entry point.

glibc's malloc returns large freed blocks to the kernel at once, so a fresh
1 MiB buffer per call (PyNaCl and zstd outputs) page-faults on every segment;
measured here that alone halves or quarters pipeline throughput. Raising the
mmap and trim thresholds keeps those buffers in the heap for reuse.

A heap that keeps what it frees must be one heap. glibc gives each thread
that allocates an arena of its own (up to 8 per core), and a buffer freed in
one arena is never reused by another. So the sealing threads each held their
own high-water mark: a backup of 100,000 small files peaked at 285 MB with
the default arenas, and at 245 MB with two, at the same speed.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import gc
from collections.abc import Iterator

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8


def tune_malloc() -> bool:
    """Set the mmap threshold to 64 MiB, the trim threshold to 1 GiB and at most two malloc
    arenas; False if not glibc. Call it before any thread starts."""
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    settings = (
        (_M_MMAP_THRESHOLD, 64 * 1024 * 1024),
        (_M_TRIM_THRESHOLD, 1024 * 1024 * 1024),
        (_M_ARENA_MAX, 2),
    )
    return all([bool(mallopt(option, value)) for option, value in settings])


def release_memory() -> bool:
    """Give the heap's free pages back to the system (glibc's malloc_trim).

    With the trim threshold raised, the segment buffers of a large backup stay
    resident after it ends; Python's small objects live in arenas of their own
    and cannot reuse them. A job calls this when it finishes, so a daemon's
    memory returns to its resting size between jobs.
    """
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        trim = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return False
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return bool(trim(0))


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """The cyclic garbage collector off while a bulk of acyclic records is built.

    Loading the state of 100,000 files makes half a million objects, and the
    collector's passes over them, which can free nothing, took a third of the
    load here. Refcounting still frees everything; only cycles wait.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
