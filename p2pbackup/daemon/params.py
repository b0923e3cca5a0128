"""A job's parameters, as a client sent them, checked against what the job takes.

Checked by binding them to the job's signature before it runs, not by catching
a TypeError around the call: a TypeError raised inside the job is a bug, and
must reach the log as one, not the user as "bad parameters"
(docs/decisions.md, "Errors").
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from p2pbackup.errors import ConfigError


def check(name: str, job: Callable[..., Any], /, *args: Any, **params: Any) -> None:
    """ConfigError if ``job(*args, **params)`` would not take these parameters."""
    try:
        inspect.signature(job).bind(*args, **params)
    except TypeError as exc:  # from bind only: names the parameter that does not fit
        raise ConfigError(f"Bad parameters for {name}: {exc}.") from None
