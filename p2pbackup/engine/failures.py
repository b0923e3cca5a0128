"""Turning a nursery's exception group back into the one error a user should see.

trio wraps every failure of a nursery's tasks in an ExceptionGroup. When a
backup stops, the reason is one of the project's errors (no room, no friend
reachable); the others in the group are usually its echoes in sibling tasks.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from p2pbackup.errors import P2PBackupError


def _leaves(error: BaseException) -> Iterator[BaseException]:
    if isinstance(error, BaseExceptionGroup):
        for inner in error.exceptions:
            yield from _leaves(inner)
    else:
        yield error


@contextmanager
def one_error() -> Iterator[None]:
    """Re-raise a group as its first project error, if every leaf is one."""
    try:
        yield
    except BaseExceptionGroup as group:
        leaves = list(_leaves(group))
        if leaves and all(isinstance(e, P2PBackupError) for e in leaves):
            raise leaves[0] from group
        raise
