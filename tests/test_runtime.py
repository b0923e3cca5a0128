"""Process-wide tuning: glibc takes every malloc setting; the GC pause always ends."""

from __future__ import annotations

import ctypes.util
import gc
import platform

import pytest

from p2pbackup import runtime

glibc = pytest.mark.skipif(
    platform.system() != "Linux"
    or platform.libc_ver()[0] != "glibc"
    or not ctypes.util.find_library("c"),
    reason="mallopt and malloc_trim are glibc's",
)


@glibc
def test_glibc_accepts_every_malloc_setting():
    assert runtime.tune_malloc() is True


def test_the_collector_is_back_on_after_a_pause_even_on_error():
    assert gc.isenabled()
    with pytest.raises(ValueError), runtime.gc_paused():
        assert not gc.isenabled()
        raise ValueError
    assert gc.isenabled()
