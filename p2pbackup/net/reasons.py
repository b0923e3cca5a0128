"""Why a network step failed, in words: libp2p often raises with no message, and a
timeout has none. ``f"{exc or 'timeout'}"`` printed an empty reason, because an
exception object is always truthy; the empty cases are named here instead."""

from __future__ import annotations

import trio


def reason_of(exc: BaseException) -> str:
    if isinstance(exc, trio.TooSlowError):
        return "no answer in time"
    return str(exc) or type(exc).__name__
