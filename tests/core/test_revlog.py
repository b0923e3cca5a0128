"""Revlogs: rebuild plans, the chain policy, repack into reverse deltas, and safe pruning.

Contents are simulated: a FULL blob holds a revision's text, a DELTA or
REVERSE blob holds (base text hash, target text). Following a rebuild plan
must produce each kept revision's text exactly, with only live blobs.
"""

from __future__ import annotations

import contextlib
import hashlib
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pbackup.core.refs import BlobRef, StorageKind
from p2pbackup.core.revlog import (
    ChainPolicy,
    Revision,
    Revlog,
    apply_repack,
    chain_cost,
    choose_storage,
    prune,
    rebuild_plan,
    repack_plan,
)
from p2pbackup.errors import IntegrityError, P2PBackupError


def _h(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


class History:
    """A revlog with simulated blob contents."""

    def __init__(self) -> None:
        self.revlog = Revlog()
        self.texts: dict[bytes, bytes] = {}
        self.blobs: dict[BlobRef, tuple[bytes | None, bytes]] = {}  # ref -> (base hash, text)

    def _blob(self, base: bytes | None, text: bytes) -> BlobRef:
        ref = BlobRef(_h(b"blob" + (base or b"") + text), 0, len(text))
        self.blobs[ref] = (None if base is None else _h(self.texts[base]), text)
        return ref

    def commit(self, text: bytes, parent: bytes | None, policy: ChainPolicy) -> bytes:
        rev_id = _h(b"rev" + text + (parent or b""))
        self.texts[rev_id] = text
        delta_size = len(text) // 4 + 1
        kind = choose_storage(self.revlog, parent, len(text), delta_size, policy)
        base = parent if kind is StorageKind.DELTA else None
        ref = self._blob(base, text)
        self.revlog.add(
            Revision(
                rev_id,
                (parent,) if parent else (),
                len(text),
                kind,
                base,
                ref,
                delta_size if base else len(text),
            )
        )
        if kind is StorageKind.DELTA:  # what the policy promises when it chooses a delta
            links, read = chain_cost(self.revlog, rev_id)
            assert links <= policy.max_links
            assert read <= policy.max_read_factor * len(text)
        return rev_id

    def repack(self, full_id: bytes) -> None:
        plan = repack_plan(self.revlog, full_id)
        converted = {rev: (self._blob(base, self.texts[rev]), 10) for rev, base in plan}
        self.revlog = apply_repack(self.revlog, converted, plan)

    def rebuild(self, revlog: Revlog, rev_id: bytes, live: frozenset[BlobRef]) -> bytes:
        text = None
        for step in rebuild_plan(revlog, rev_id):
            assert step.blob in live, "a kept revision needs a removed blob"
            base_hash, target = self.blobs[step.blob]
            if step.kind is StorageKind.FULL:
                assert base_hash is None
            else:
                assert base_hash == _h(text), "a delta was applied to the wrong base"
            text = target
        return text


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32), st.integers(1, 30), st.integers(2, 6), st.floats(1.0, 3.0))
def test_prune_never_breaks_a_kept_revision(seed, count, max_links, factor):
    rnd = random.Random(seed)
    policy = ChainPolicy(max_links=max_links, max_read_factor=factor)
    history = History()
    revs: list[bytes] = []
    for i in range(count):
        parent = rnd.choice(revs) if revs and rnd.random() < 0.2 else (revs[-1] if revs else None)
        rev = history.commit(rnd.randbytes(rnd.randint(1, 200)) + bytes([i]), parent, policy)
        revs.append(rev)
        if history.revlog.get(rev).kind is StorageKind.FULL and parent and rnd.random() < 0.5:
            history.repack(rev)
    keep = {r for r in revs if rnd.random() < 0.4}
    result = prune(history.revlog, keep)
    for rev in keep:
        assert history.rebuild(result.revlog, rev, result.live_blobs) == history.texts[rev]
    assert not result.live_blobs & result.dead_blobs
    assert result.dropped.isdisjoint(keep)


def test_chain_policy_limits_links_and_reads():
    history = History()
    policy = ChainPolicy(max_links=3, max_read_factor=100)
    revs = [history.commit(b"x" * 100, None, policy)]
    for i in range(6):
        revs.append(history.commit(b"x" * 100 + bytes([i]), revs[-1], policy))
    kinds = [history.revlog.get(r).kind for r in revs]
    assert kinds[:4] == [StorageKind.FULL, StorageKind.DELTA, StorageKind.DELTA, StorageKind.FULL]
    assert all(chain_cost(history.revlog, r)[0] <= 3 for r in revs)
    tight = ChainPolicy(max_links=100, max_read_factor=1.0)
    parent = history.commit(b"y" * 100, None, tight)
    # The full text (101 bytes read) plus a delta is more than 1x the new size: full again.
    assert choose_storage(history.revlog, parent, 100, 26, tight) is StorageKind.FULL


def test_repack_turns_old_versions_into_reverse_deltas_and_frees_the_old_full_text():
    history = History()
    policy = ChainPolicy(max_links=4, max_read_factor=100)
    revs = [history.commit(b"v0" * 50, None, policy)]
    for i in range(1, 5):
        revs.append(history.commit(b"v%d" % i * 50, revs[-1], policy))
    assert history.revlog.get(revs[4]).kind is StorageKind.FULL
    old_full = history.revlog.get(revs[0]).blob
    history.repack(revs[4])
    assert [history.revlog.get(r).kind for r in revs] == [StorageKind.REVERSE] * 4 + [
        StorageKind.FULL
    ]
    assert list(Revlog.from_bytes(history.revlog.to_bytes())) == list(
        Revlog.from_bytes(Revlog.from_bytes(history.revlog.to_bytes()).to_bytes())
    )
    assert {r.rev_id for r in Revlog.from_bytes(history.revlog.to_bytes())} == set(revs)
    result = prune(history.revlog, revs)
    assert old_full not in result.live_blobs, "the old full text is no longer needed"
    for rev in revs:
        assert history.rebuild(result.revlog, rev, result.live_blobs) == history.texts[rev]


def test_revlog_bytes_round_trip_and_vector():
    history = History()
    policy = ChainPolicy()
    first = history.commit(b"one", None, policy)
    history.commit(b"two", first, policy)
    data = history.revlog.to_bytes()
    again = Revlog.from_bytes(data)
    assert list(again) == list(history.revlog)
    assert hashlib.blake2b(data, digest_size=16).hexdigest() == "62d5cc7a3b16dd42f1bf58a6cacda5bb"


def test_unknown_bases_and_cycles_are_integrity_errors():
    revlog = Revlog()
    blob = BlobRef(bytes(32), 0, 1)
    with pytest.raises(IntegrityError):
        revlog.add(Revision(b"a" * 32, (), 1, StorageKind.DELTA, b"b" * 32, blob, 1))
    with pytest.raises(IntegrityError):
        rebuild_plan(revlog, b"c" * 32)


@given(st.binary(max_size=300))
def test_garbage_revlogs_raise_only_project_errors(data):
    with pytest.raises(P2PBackupError):
        Revlog.from_bytes(b"x" + data)
    with contextlib.suppress(P2PBackupError):
        Revlog.from_bytes(b"P2RL\x01" + data)
