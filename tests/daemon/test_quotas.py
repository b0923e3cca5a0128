"""Quota care: a quota nearly full is told once per crossing of upkeep's quota_warn,
both ways: the space a friend gives me ("theirs", from its STATs) and the space I give
a friend ("mine", from my pool), not on every look while it stays full."""

from __future__ import annotations

from types import SimpleNamespace

from p2pbackup.daemon.quotas import QuotaWatch
from p2pbackup.engine import events as ev
from p2pbackup.storage.store import Usage

GIB = 1 << 30


class _Node:
    """Bob gives me 10 GiB (his STAT says how much I use); I give him 4 GiB."""

    def __init__(self) -> None:
        self.bob = SimpleNamespace(name="bob", owner_id=b"b" * 32, i_give=4 * GIB)
        self.catalog = SimpleNamespace(friends=lambda: [self.bob])
        self.theirs: Usage | None = Usage(0, 10 * GIB)  # None: offline
        self.mine = 0
        self.friends = SimpleNamespace(usage=lambda: {self.bob.owner_id: self.theirs})
        self.pool = SimpleNamespace(used=lambda owner: self.mine)


def test_each_way_is_told_once_per_crossing_not_on_every_stat():
    node, told = _Node(), []
    watch = QuotaWatch(node, told.append)

    def look(theirs: float | None, mine: float) -> list[tuple[str, int]]:
        node.theirs = None if theirs is None else Usage(int(theirs * GIB), 10 * GIB)
        node.mine = int(mine * GIB)
        return [(e.whose, e.used) for e in watch.check(0.9)]

    assert look(5, 1) == []
    assert look(9.1, 1) == [("theirs", int(9.1 * GIB))]
    assert look(9.5, 1) == [] and look(9.2, 1) == []  # still full: told already
    assert look(8.95, 3.7) == [("mine", int(3.7 * GIB))]  # just under the line: not again
    assert look(None, 3.9) == []  # bob offline: his side is kept as it was
    assert watch.state() == [
        {"name": "bob", "whose": "mine", "used": int(3.9 * GIB), "quota": 4 * GIB},
        {"name": "bob", "whose": "theirs", "used": int(8.95 * GIB), "quota": 10 * GIB},
    ]
    assert look(6, 1) == []  # well below again, both ways: armed
    assert look(9.9, 3.8) == [("theirs", int(9.9 * GIB)), ("mine", int(3.8 * GIB))]
    assert all(isinstance(e, ev.QuotaNearlyFull) and e.name == "bob" for e in told)
    assert [e.quota for e in told] == [10 * GIB, 4 * GIB, 10 * GIB, 4 * GIB]


def test_a_lower_threshold_tells_at_once_and_nothing_given_is_never_full():
    node, told = _Node(), []
    watch = QuotaWatch(node, told.append)
    node.theirs, node.mine = Usage(6 * GIB, 10 * GIB), 0
    assert watch.check(0.9) == []
    assert [e.whose for e in watch.check(0.5)] == ["theirs"]  # the setting changed
    node.bob.i_give, node.theirs = 0, Usage(0, 0)  # nothing given either way
    assert watch.check(0.5) == [] and watch.state() == []
