"""Revlogs: rebuild plans, the chain policy, repack into reverse deltas, safe pruning, bytes.

Contents are simulated: a FULL blob holds a revision's text; a DELTA or
REVERSE blob holds (hash of the text it must be applied to, target text), so
applying it to the wrong base fails. Pruning deletes dead blobs from the
simulated store, so any later rebuild that still needed one fails too.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools

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
from p2pbackup.errors import ConfigError, FormatError, IntegrityError, P2PBackupError

FULL, DELTA, REVERSE = StorageKind.FULL, StorageKind.DELTA, StorageKind.REVERSE


def _h(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


class Model:
    """A revlog plus a simulated blob store and every revision's true text."""

    def __init__(self) -> None:
        self.revlog = Revlog()
        self.texts: dict[bytes, bytes] = {}
        self.store: dict[BlobRef, tuple[bytes | None, bytes]] = {}
        self._ids = itertools.count()

    def _blob(self, base: bytes | None, text: bytes) -> BlobRef:
        ref = BlobRef(_h(b"record %d" % next(self._ids)), 0, len(text))
        self.store[ref] = (None if base is None else _h(self.texts[base]), text)
        return ref

    def commit(
        self, text: bytes, parents: tuple[bytes, ...], policy: ChainPolicy, delta_size: int
    ) -> bytes:
        rev_id = _h(b"rev %d" % next(self._ids))
        text += rev_id[:4]  # unique texts, so a delta on the wrong base is always caught
        kind = choose_storage(
            self.revlog, parents[0] if parents else None, len(text), delta_size, policy
        )
        base = parents[0] if kind is DELTA else None
        blob = self._blob(base, text)
        self.texts[rev_id] = text
        size = delta_size if base else len(text)
        self.revlog.add(Revision(rev_id, parents, len(text), kind, base, blob, size))
        if kind is DELTA:  # the promise the policy makes when it chooses a delta
            links, read = chain_cost(self.revlog, rev_id)
            assert links <= policy.max_links
            assert read <= policy.max_read_factor * len(text)
        return rev_id

    def repack(self, full_id: bytes, max_links: int, count: int | None = None) -> list:
        plan = repack_plan(self.revlog, full_id, max_links)
        converted = {rev: (self._blob(base, self.texts[rev]), 3) for rev, base in plan[:count]}
        self.revlog = apply_repack(self.revlog, converted, plan)
        return plan

    def rebuild(self, rev_id: bytes, revlog: Revlog | None = None) -> bytes:
        text = b""
        for number, step in enumerate(rebuild_plan(revlog or self.revlog, rev_id)):
            assert step.blob in self.store, "a revision needs a blob that prune removed"
            base_hash, target = self.store[step.blob]
            assert (step.kind is FULL) == (number == 0) == (base_hash is None)
            assert base_hash in (None, _h(text)), "a delta was applied to the wrong base"
            text = target
        return text

    def check(self) -> None:
        for rev in self.revlog:
            assert self.rebuild(rev.rev_id) == self.texts[rev.rev_id]
        assert Revlog.from_bytes(self.revlog.to_bytes()) == self.revlog


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_random_histories_with_repacks_and_prunes_rebuild_every_kept_revision(data):
    policy = ChainPolicy(
        max_links=data.draw(st.sampled_from([3, 6, 1, 0])),
        max_read_factor=data.draw(st.sampled_from([4, 2, 1, 0.5])),
    )
    model = Model()
    for _ in range(data.draw(st.integers(1, 25))):
        revs = sorted(model.revlog.tips()) + sorted(r.rev_id for r in model.revlog)
        op = data.draw(st.sampled_from(["commit", "commit", "merge", "repack", "prune"]))
        if op in ("commit", "merge") or not revs:
            parents: tuple[bytes, ...] = ()
            if revs and data.draw(st.sampled_from(["child"] * 5 + ["new root"])) == "child":
                parents = (data.draw(st.sampled_from(revs)),)
                if op == "merge" and len(set(revs)) > 1:
                    other = data.draw(st.sampled_from([r for r in revs if r != parents[0]]))
                    parents += (other,)
            text = data.draw(st.binary(min_size=8, max_size=40))
            model.commit(text, parents, policy, data.draw(st.integers(0, 12)))
        elif op == "repack":
            fulls = [
                r for r in revs if model.revlog.get(r).kind is FULL and repack_plan(model.revlog, r)
            ]
            if fulls:
                max_links = data.draw(st.sampled_from([16, 3, 1, 0]))
                count = data.draw(st.sampled_from([None, 2, 1, 0]))  # all, or a prefix
                plan = model.repack(data.draw(st.sampled_from(fulls)), max_links, count)
                assert len(plan) <= max_links
                for rev_id, _ in plan[:count]:
                    assert chain_cost(model.revlog, rev_id)[0] <= max_links
        else:
            keep = data.draw(st.sets(st.sampled_from(revs)))
            before = {rev.rev_id: rev.blob for rev in model.revlog}
            result = prune(model.revlog, keep)
            kept_ids = {rev.rev_id for rev in result.revlog}
            assert keep <= kept_ids and result.dropped == before.keys() - kept_ids
            assert result.live_blobs == {rev.blob for rev in result.revlog}
            assert result.live_blobs | result.dead_blobs == set(before.values())
            assert not result.live_blobs & result.dead_blobs
            for blob in result.dead_blobs:  # removed from friends: never readable again
                del model.store[blob]
            for rev_id in keep:
                for step in rebuild_plan(result.revlog, rev_id):
                    assert step.blob in result.live_blobs
                assert model.rebuild(rev_id, result.revlog) == model.texts[rev_id]
            model.revlog = result.revlog
        model.check()


def _linear(model: Model, count: int, policy: ChainPolicy, delta_size: int = 1) -> list[bytes]:
    revs: list[bytes] = []
    for i in range(count):
        parents = (revs[-1],) if revs else ()
        revs.append(model.commit(b"version %d " % i * 5, parents, policy, delta_size))
    return revs


def _kinds(model: Model, revs: list[bytes]) -> str:
    letters = {FULL: "F", DELTA: "d", REVERSE: "r"}
    return "".join(letters[model.revlog.get(r).kind] for r in revs)


def test_chain_policy_counts_links_like_mercurial():
    model = Model()
    revs = _linear(model, 9, ChainPolicy(max_links=3, max_read_factor=100))
    assert _kinds(model, revs) == "FdddFdddF"
    assert [chain_cost(model.revlog, r)[0] for r in revs] == [0, 1, 2, 3, 0, 1, 2, 3, 0]
    assert chain_cost(model.revlog, revs[2]) == (2, model.revlog.get(revs[0]).size + 2)
    never = Model()
    assert _kinds(never, _linear(never, 3, ChainPolicy(max_links=0))) == "FFF"


def test_chain_policy_starts_a_full_text_when_rebuilding_reads_too_much():
    model = Model()
    first = model.commit(b"x" * 96, (), ChainPolicy(), 0)  # 100 bytes with its suffix
    policy = ChainPolicy(max_links=100, max_read_factor=1.5)
    assert choose_storage(model.revlog, first, 100, 50, policy) is DELTA  # reads 150
    assert choose_storage(model.revlog, first, 100, 51, policy) is FULL  # reads 151
    assert choose_storage(model.revlog, None, 100, 1, policy) is FULL
    assert choose_storage(model.revlog, b"?" * 32, 100, 1, policy) is FULL
    with pytest.raises(ConfigError):
        ChainPolicy(max_links=-1)


def test_repack_turns_the_old_chain_into_reverse_deltas_and_frees_the_old_full_text():
    model = Model()
    revs = _linear(model, 8, ChainPolicy(max_links=5, max_read_factor=100))
    assert _kinds(model, revs) == "FdddddFd"
    old_full = model.revlog.get(revs[0]).blob
    plan = model.repack(revs[6], max_links=16)
    assert plan == [(revs[i], revs[i + 1]) for i in range(5, -1, -1)]  # nearest first
    assert _kinds(model, revs) == "rrrrrrFd"
    assert [s.rev_id for s in rebuild_plan(model.revlog, revs[4])] == [revs[6], revs[5], revs[4]]
    assert [s.kind for s in rebuild_plan(model.revlog, revs[4])] == [FULL, REVERSE, REVERSE]
    result = prune(model.revlog, revs)
    assert old_full not in result.live_blobs and not result.dropped  # the old text can go
    del model.store[old_full]
    model.check()


def test_repack_stops_at_max_links_at_reverse_deltas_and_without_a_full_text():
    model = Model()
    revs = _linear(model, 6, ChainPolicy(max_links=4, max_read_factor=100))
    assert _kinds(model, revs) == "FddddF"
    assert repack_plan(model.revlog, revs[3]) == []  # a delta is not a new full text
    assert repack_plan(model.revlog, revs[0]) == []  # a root has nothing behind it
    model.repack(revs[5], max_links=2)
    assert _kinds(model, revs) == "FddrrF"
    model.repack(revs[5], max_links=16)  # the nearest is a reverse delta already
    assert _kinds(model, revs) == "FddrrF"
    model.check()


def test_a_partial_repack_must_be_a_nearest_first_prefix():
    model = Model()
    revs = _linear(model, 5, ChainPolicy(max_links=3, max_read_factor=100))
    plan = repack_plan(model.revlog, revs[4])
    assert len(plan) == 4
    model.repack(revs[4], max_links=16, count=2)  # only the two nearest were stored
    assert _kinds(model, revs) == "FdrrF"
    model.check()
    gap = {plan[0][0]: (BlobRef(bytes(32), 0, 1), 1), plan[2][0]: (BlobRef(bytes(32), 0, 1), 1)}
    with pytest.raises(ValueError, match="prefix"):
        apply_repack(model.revlog, gap, plan)


def test_a_repack_that_would_loop_is_refused():
    model = Model()
    a, b = _linear(model, 2, ChainPolicy())  # b is a delta on a
    with pytest.raises(IntegrityError, match="loop"):
        apply_repack(model.revlog, {a: (BlobRef(bytes(32), 0, 1), 1)}, [(a, b)])
    assert model.revlog.get(a).kind is FULL  # the original is untouched


def test_merges_branches_and_tips():
    model = Model()
    policy = ChainPolicy()
    root = model.commit(b"root", (), policy, 1)
    laptop = model.commit(b"laptop", (root,), policy, 1)
    phone = model.commit(b"phone", (root,), policy, 1)
    assert model.revlog.tips() == {laptop, phone}
    merged = model.commit(b"merged", (laptop, phone), policy, 1)
    assert model.revlog.tips() == {merged}
    assert model.revlog.get(merged).base == laptop
    full = model.commit(b"full", (merged,), ChainPolicy(max_links=0), 1)
    model.repack(full, max_links=16)  # merge -> laptop -> root, along the bases
    assert _kinds(model, [root, laptop, phone, merged, full]) == "rrdrF"
    model.check()


def test_prune_keeps_what_kept_revisions_need_and_shared_blobs_stay_live():
    model = Model()
    revs = _linear(model, 4, ChainPolicy())
    shared = model.revlog.get(revs[0]).blob
    twin = Revision(_h(b"twin"), (), 1, FULL, None, shared, 1)
    model.revlog.add(twin)
    result = prune(model.revlog, [revs[2]])
    assert {r.rev_id for r in result.revlog} == set(revs[:3])
    assert result.dropped == {revs[3], twin.rev_id}
    assert shared in result.live_blobs and shared not in result.dead_blobs
    assert result.dead_blobs == {model.revlog.get(revs[3]).blob}
    nothing = prune(model.revlog, [])
    assert len(nothing.revlog) == 0 and nothing.live_blobs == frozenset()
    with pytest.raises(IntegrityError, match="not in the revlog"):
        prune(model.revlog, [b"?" * 32])


def test_add_refuses_unknown_bases_and_conflicting_duplicates():
    revlog = Revlog()
    a, b = b"a" * 32, b"b" * 32
    full = Revision(a, (), 1, FULL, None, BlobRef(bytes(32), 0, 1), 1)
    with pytest.raises(IntegrityError, match="not in the revlog"):
        revlog.add(Revision(b, (a,), 1, DELTA, a, BlobRef(bytes(32), 0, 1), 1))
    revlog.add(full)
    revlog.add(full)  # the same revision again: nothing changes
    assert len(revlog) == 1 and a in revlog and list(revlog) == [full]
    with pytest.raises(IntegrityError, match="twice"):
        revlog.add(Revision(a, (), 2, FULL, None, BlobRef(bytes(32), 0, 2), 2))
    with pytest.raises(IntegrityError, match="not in the revlog"):
        rebuild_plan(revlog, b)


@pytest.mark.parametrize(
    ("parents", "kind", "base", "problem"),
    [
        ((), DELTA, b"p" * 32, "parents"),  # a forward delta on a non-parent
        ((b"p" * 32,), REVERSE, b"p" * 32, "later"),  # a reverse delta on a parent
        ((), FULL, b"p" * 32, "no base"),
        ((), DELTA, None, "no base"),
        ((b"p" * 32, b"q" * 32, b"s" * 32), FULL, None, "two"),
        ((b"p" * 32, b"p" * 32), FULL, None, "distinct"),
        ((b"r" * 32,), FULL, None, "own"),
        ((b"short",), FULL, None, "32 bytes"),
    ],
)
def test_inconsistent_revisions_are_refused(parents, kind, base, problem):
    with pytest.raises(ValueError, match=problem):
        Revision(b"r" * 32, parents, 1, kind, base, BlobRef(bytes(32), 0, 1), 1)


def _sample() -> Revlog:
    """A repacked revision, the full text it points to, and a merge stored as a delta."""
    a, b, c, d = (bytes([i]) * 32 for i in (1, 2, 3, 4))
    return Revlog(
        [
            Revision(b, (a,), 120, FULL, None, BlobRef(b"\xbb" * 32, 0, 120), 120),
            Revision(a, (), 100, REVERSE, b, BlobRef(b"\xaa" * 32, 0, 7), 7),
            Revision(c, (b, d), 130, DELTA, b, BlobRef(b"\xbb" * 32, 120, 15), 15),
        ]
    )


SAMPLE_HEX = (
    "5032524c0103"  # magic, version 1, 3 revisions
    # b: FULL, 1 parent (a), size 120, blob bb.. offset 0 length 120, blob_size 120
    + "02" * 32 + "01" + "01" * 32 + "78" + "01" + "bb" * 32 + "00" + "78" + "78"
    # a: REVERSE on b, no parents, size 100, blob aa.. offset 0 length 7, blob_size 7
    + "01" * 32 + "00" + "64" + "03" + "02" * 32 + "aa" * 32 + "00" + "07" + "07"
    # c: DELTA on b, parents (b, d), size 130, blob bb.. offset 120 length 15, blob_size 15
    + "03" * 32 + "02" + "02" * 32 + "04" * 32 + "8201" + "02" + "02" * 32
    + "bb" * 32 + "78" + "0f" + "0f"
)  # fmt: skip


def test_fixed_vector_in_canonical_order():
    data = _sample().to_bytes()
    assert data.hex() == SAMPLE_HEX
    assert Revlog.from_bytes(data) == _sample()
    b, a, c = Revlog.from_bytes(data)
    assert Revlog([b, c, a]).to_bytes() == data  # insertion order does not matter
    assert [s.kind for s in rebuild_plan(_sample(), bytes([1]) * 32)] == [FULL, REVERSE]


def _edit(data: bytes, start: int, new: bytes) -> bytes:
    return data[:start] + new + data[start + len(new) :]


@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        (lambda d: d[:6] + d[108:210] + d[6:108] + d[210:], "before its base"),
        (lambda d: d[:6] + d[6:108] * 2 + d[108:], "repeated or out of order"),
        (lambda d: _edit(d, 5, b"\x02"), "unexpected bytes"),
        (lambda d: _edit(d, 38, b"\x03"), "3 parents"),
        (lambda d: _edit(d, 72, b"\x07"), "unknown storage kind 7"),
        (lambda d: _edit(d, 142, b"\x02"), "one of its parents"),  # a as a delta on b
        (lambda d: _edit(d, 309, b"\x03"), "later revision"),  # c as a reverse delta on b
        (lambda d: b"P2RL\x02" + d[5:], "version 2"),
        (lambda d: b"P2RX" + d[4:], "not a revlog"),
    ],
)
def test_damaged_encodings_say_what_is_wrong(damage, problem):
    with pytest.raises(FormatError, match=problem):
        Revlog.from_bytes(damage(bytes.fromhex(SAMPLE_HEX)))


def test_every_truncation_and_bit_flip_raises_only_project_errors():
    data = bytes.fromhex(SAMPLE_HEX)
    for end in range(len(data)):
        with pytest.raises(FormatError):
            Revlog.from_bytes(data[:end])
    for position, bit in itertools.product(range(len(data)), range(8)):
        flipped = _edit(data, position, bytes([data[position] ^ (1 << bit)]))
        with contextlib.suppress(P2PBackupError):
            Revlog.from_bytes(flipped)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_garbage_raises_only_project_errors(data):
    for candidate in (data, b"P2RL\x01" + data):
        with contextlib.suppress(P2PBackupError):
            Revlog.from_bytes(candidate)
