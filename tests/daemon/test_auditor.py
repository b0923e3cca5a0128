"""The daemon audits its friends on a schedule and repairs what they lost, by itself
(virtual time: trio's MockClock)."""

from __future__ import annotations

import hashlib
import os
from contextlib import asynccontextmanager
from types import SimpleNamespace

import pytest
import trio
import trio.testing

from p2pbackup.core import erasure
from p2pbackup.daemon import auditor as auditing
from p2pbackup.daemon.auditor import Auditor
from p2pbackup.engine import events as ev
from p2pbackup.engine.state import BackupState, StoredRecord
from p2pbackup.engine.verify import Verifier, make_challenges
from p2pbackup.storage.memorystore import MemoryShareStore
from p2pbackup.storage.store import ShareKey
from tests.daemon.conftest import make_profile, run_on_mock_clock, started
from tests.daemon.test_cycle import make_tree
from tests.daemon.test_upkeep import _shares

DAY = 86400.0
START = 1.7e9  # the wall clock when the daemon starts
NAMES = ("alice", "bob", "carol", "dave")
KEYS = {name: hashlib.blake2b(name.encode(), digest_size=32).hexdigest() for name in NAMES}


class Liar:
    """A friend's store that answers for a block with one byte changed (keeping the right
    sibling hashes): it kept the tree and threw the data away."""

    def __init__(self, store: MemoryShareStore, lie_about: set[ShareKey]) -> None:
        self._store, self.name, self.lie_about = store, store.name, lie_about

    def __getattr__(self, name):
        return getattr(self._store, name)

    async def prove_blocks(self, key, blocks):
        proofs = await self._store.prove_blocks(key, blocks)
        if key in self.lie_about:
            data, path = proofs[0]
            proofs = [(bytes([data[0] ^ 1]) + data[1:], path)]
        return proofs


class FakeGrid:
    def __init__(self, stores) -> None:
        self.online = stores

    def name(self, key: str) -> str:
        return next(n for n, k in KEYS.items() if k == key)

    def room(self) -> dict[str, int]:
        return {key: 1 << 30 for key in self.online}


class FakeDaemon:
    """What the Auditor uses of a daemon: the profile, presence, and jobs run one at a
    time on a session over in-memory friends."""

    def __init__(self, profile, records: int, flat: int = 0) -> None:
        self.node = SimpleNamespace(profile=profile)
        self.state = BackupState()
        self.memory = {KEYS[n]: MemoryShareStore(n, 1 << 30, bytes(32)) for n in NAMES}
        self.stores = dict(self.memory)
        self.descriptors = {}
        for number in range(records):
            version = erasure.FLAT_VERSION if number < flat else erasure.VERSION
            rid = hashlib.blake2b(b"%d" % number, digest_size=32).digest()
            d, shares = erasure.encode(rid, hashlib.shake_256(rid).digest(30_000 + number),
                                       2, 4, version=version)  # fmt: skip
            for index, share in enumerate(shares):
                self.memory[KEYS[NAMES[index]]]._shares[ShareKey(rid, index)] = share
            self.state.record_stored(rid, StoredRecord(d, {i: KEYS[NAMES[i]] for i in range(4)}))
            if version == erasure.FLAT_VERSION:
                for index, pairs in enumerate(make_challenges(shares)):
                    self.state.new_challenges(ShareKey(rid, index), pairs)
            self.descriptors[rid] = d
        self.events: list[tuple[float, ev.Event]] = []
        self.lock = trio.Lock()
        self._news = trio.Event()
        self.friends = SimpleNamespace(presence=lambda: [
            {"owner_id": KEYS[n], "name": n, "online": True} for n in NAMES])  # fmt: skip

    def publish(self, event) -> None:
        self.events.append((trio.current_time(), event))
        self._news.set()
        self._news = trio.Event()

    async def until(self, done) -> float:
        """Waits on the auditor's news, not on the clock: a worker thread lets a mock
        clock jump to the next deadline, and the test's own sleeps would be such."""
        while not done():
            await self._news.wait()
        return trio.current_time()

    def audits(self, name: str) -> list[tuple[float, ev.AuditDone]]:
        return [(at, e) for at, e in self.of(ev.AuditDone) if e.name == name]

    @asynccontextmanager
    async def session(self):
        descriptors = list(self.descriptors.values())
        snapshot = SimpleNamespace(ref=SimpleNamespace(manifest=descriptors[0]),
                                   manifest=SimpleNamespace(records=descriptors))  # fmt: skip

        async def snapshots():
            return [snapshot]

        yield SimpleNamespace(
            node=self.node, grid=FakeGrid(self.stores), state=self.state,
            workers=trio.CapacityLimiter(2), events=self.publish,
            settings=self.node.profile.settings, snapshots=snapshots,
        )  # fmt: skip

    async def run_job(self, name, params, events=None, *, source="client"):
        assert name == "audit"
        async with self.lock, self.session() as s:
            return await auditing.audit(s, **params)

    def of(self, kind):
        return [(at, e) for at, e in self.events if isinstance(e, kind)]


def _run(daemon: FakeDaemon, script) -> None:
    async def main():
        auditor = Auditor(daemon, daemon.publish, clock=lambda: START + trio.current_time())
        daemon.auditor = auditor
        async with trio.open_nursery() as nursery:
            nursery.start_soon(auditor.run)
            await script(auditor)
            nursery.cancel_scope.cancel()

    run_on_mock_clock(main)


async def _safe(daemon: FakeDaemon) -> bool:
    verifier = Verifier(daemon.memory, daemon.state, ev.ignore, trio.CapacityLimiter(2))
    report = await verifier.verify(daemon.descriptors.values(), read_data=False)
    return not report.at_risk() and all(
        len(h.held()) == 4 and not h.bad for h in report.records.values())  # fmt: skip


def test_a_friend_that_silently_drops_a_tenth_is_caught_within_a_period_and_repaired(tmp_path):
    profile = make_profile(tmp_path, "laptop", upkeep={"audit_every": 7 * DAY})
    daemon = FakeDaemon(profile, records=40, flat=8)  # some records from before block trees
    carol = daemon.memory[KEYS["carol"]]
    dropped = sorted(carol._shares, key=lambda k: k.record_id)[::10]  # a tenth, old ones too
    assert len(dropped) == 4 and any(daemon.descriptors[k.record_id].share_hashes for k in dropped)

    async def script(auditor):
        await daemon.until(lambda: daemon.audits("carol"))  # audited once; then she drops
        dropped_at = trio.current_time()
        for key in dropped:
            await carol.remove(key)
        caught = await daemon.until(lambda: any(e.missing for _, e in daemon.audits("carol")))
        assert caught - dropped_at <= 7 * DAY  # within one audit period
        await daemon.until(lambda: daemon.of(ev.RepairDone))
        assert await _safe(daemon)  # nobody called repair
        await daemon.until(lambda: len(daemon.audits("alice")) >= 8)

    _run(daemon, script)
    found = [e for _, e in daemon.audits("carol") if e.missing]
    assert found[0].missing == 4
    repaired = daemon.of(ev.RepairDone)
    assert sum(e.shares for _, e in repaired) >= 4
    assert [e.why for _, e in daemon.of(ev.SafetyChanged)][:2] == [
        "audit found shares missing", "repair"]  # fmt: skip
    for key in dropped:  # stored again, byte for byte, in its own format
        d = daemon.descriptors[key.record_id]
        holders = [s for s in daemon.memory.values() if key in s._shares]
        assert holders
        erasure.verify_share(d, key.index, holders[0]._shares[key])
    # Every friend audited about once a day, each time a slice: never all at once.
    audits = daemon.audits("alice")
    assert max(e.proved for _, e in audits) < 20
    assert audits[-1][0] - audits[0][0] >= 7 * DAY - 1  # a day apart, not back to back


def test_a_friend_lying_about_a_block_is_caught_and_the_share_placed_again(tmp_path):
    profile = make_profile(tmp_path, "laptop", upkeep={"audit_every": 7 * DAY})
    daemon = FakeDaemon(profile, records=10)
    dave = daemon.memory[KEYS["dave"]]
    lies = set(list(dave._shares)[:3])
    daemon.stores[KEYS["dave"]] = Liar(dave, lies)

    async def script(auditor):
        await daemon.until(lambda: len(daemon.audits("dave")) >= 8)  # a week and a day
        state = auditor.state()
        row = next(f for f in state["friends"] if f["name"] == "dave")
        assert row["last_audit"] and row["passes"] >= 1

    _run(daemon, script)
    caught = [e for _, e in daemon.of(ev.AuditDone) if e.name == "dave" and e.damaged]
    assert sum(e.damaged for e in caught) >= 3  # and again if one is placed on dave again
    assert sum(e.shares for _, e in daemon.of(ev.RepairDone)) >= 3
    for key in lies:  # the lie's copy was dropped; a good one is kept where local state says
        holder = daemon.state.records[key.record_id].placement[key.index]
        share = daemon.memory[holder]._shares[key]
        erasure.verify_share(daemon.descriptors[key.record_id], key.index, share)


def _kept(profile) -> list[str]:
    return sorted(p for p in _shares(profile) if f"{os.sep}shares{os.sep}" in p)


@pytest.mark.trio
async def test_the_audit_job_between_real_nodes_finds_and_repairs(tmp_path):
    """The job the Auditor runs, on a real session over libp2p: PROVE_BLOCKS end to end."""
    folder = make_tree(tmp_path)
    async with started(tmp_path / "nodes", folders=[folder],
                       upkeep={"audit_every": 1.0}) as nodes:  # fmt: skip
        await nodes.run("laptop", "backup")
        carol = nodes.nodes["carol"].keys.owner_id.hex()
        dave = nodes.nodes["dave"].keys.owner_id.hex()
        damaged = _kept(nodes.profiles["dave"])[0]
        with open(damaged, "r+b") as f:
            f.seek(100)
            byte = f.read(1)
            f.seek(100)
            f.write(bytes([byte[0] ^ 1]))
        record = os.path.basename(damaged).split(".")[0]  # carol loses one of another record
        os.unlink(next(p for p in _kept(nodes.profiles["carol"]) if record not in p))
        first = await nodes.run("laptop", "audit", friend=dave, now=START)  # a first slice
        found = await nodes.run("laptop", "audit", friend=dave, now=START + 10)  # all
        assert found["proved"] + found["damaged"] == found["held"]  # a whole pass
        assert first["damaged"] + found["damaged"] == 1  # in whichever slice it came
        assert first["repaired_shares"] + found["repaired_shares"] >= 1
        found = await nodes.run("laptop", "audit", friend=carol, now=START)
        assert (found["missing"], found["damaged"]) == (1, 0)
        assert found["repaired_shares"] >= 1 and found["bytes_received"] > 0
        clean = await nodes.run("laptop", "verify")
        assert clean["at_risk"] == 0 and clean["friends_that_could_disappear"] == 2


def test_a_bug_in_an_audit_does_not_stop_the_daemon(tmp_path):
    profile = make_profile(tmp_path, "laptop", upkeep={"audit_every": 7 * DAY})
    daemon = FakeDaemon(profile, records=2)
    calls = []

    async def broken(name, params, events=None, *, source="client"):
        calls.append(trio.current_time())
        raise TypeError("a bug")

    daemon.run_job = broken

    async def script(auditor):
        while len(calls) < 8:  # every friend, round after round
            await trio.sleep(3600)
        assert auditor.last_error == "internal error, see the log"

    _run(daemon, script)
