"""Turning a nursery's exception group back into the one error a user should see.

trio wraps every failure of a nursery's tasks in an ExceptionGroup. When a
backup stops, the reason is one of the project's errors (no room, no friend
reachable); the others in the group are usually its echoes in sibling tasks.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from p2pbackup.errors import P2PBackupError


def leaves(error: BaseException) -> Iterator[BaseException]:
    """The exceptions inside a group, however deep: nested nurseries wrap a failure once
    per level, so ``group.exceptions`` may hold groups, not the errors themselves."""
    if isinstance(error, BaseExceptionGroup):
        for inner in error.exceptions:
            yield from leaves(inner)
    else:
        yield error


@contextmanager
def one_error() -> Iterator[None]:
    """Re-raise a group as its first project error, if every leaf is one."""
    try:
        yield
    except BaseExceptionGroup as group:
        found = list(leaves(group))
        if found and all(isinstance(e, P2PBackupError) for e in found):
            raise found[0] from group
        raise
