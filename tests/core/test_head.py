"""The owner's head: sealing, verifying without the key, opening, and lossless merges."""

from __future__ import annotations

import contextlib
import hashlib
from functools import reduce

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nacl.signing import SigningKey

from p2pbackup.core import head
from p2pbackup.core.head import (
    CatalogRef,
    FriendEntry,
    HeadBody,
    SignedHead,
    SnapshotRef,
    folder_set_id,
    merge,
    open_head,
    seal_head,
    verify_head,
)
from p2pbackup.core.refs import RecordDescriptor
from p2pbackup.errors import FormatError, IntegrityError

SIGNING_KEY = SigningKey(bytes(32))
OWNER_ID = bytes(SIGNING_KEY.verify_key)
HEAD_KEY = bytes(range(32))
OTHER_KEY = SigningKey(b"\x01" * 32)
EMPTY = HeadBody(frozenset(), frozenset(), frozenset(), None)


def _id(label: str, size: int = 32) -> bytes:
    return hashlib.blake2b(label.encode(), digest_size=size).digest()


def _descriptor(label: str) -> RecordDescriptor:
    return RecordDescriptor(_id(f"record {label}"), 1, 1, 100, (_id(f"share {label}"),))


def _snapshot(
    label: str, generation: int = 0, manifest: str = "m", device: str = "", folders=None
) -> SnapshotRef:
    return SnapshotRef(
        _id(label, 16), generation, 1_700_000_000_000_000_000, _descriptor(manifest), device,
        folder_set_id(folders) if folders is not None else b"",
    )  # fmt: skip


def _friend(label: str, updated_at: int = 1, removed: bool = False) -> FriendEntry:
    return FriendEntry(
        _id(f"friend {label}"),
        label,
        (f"/ip4/192.0.2.1/tcp/4001/{label}",),
        ("12D3KooWfriend",),
        updated_at,
        removed,
    )


BODY_V1 = HeadBody(
    frozenset({_snapshot("monday"), _snapshot("tuesday", generation=1)}),
    frozenset({_id("sunday", 16)}),
    frozenset({_friend("ann")}),
    CatalogRef(1_700_000_000_000_000_000, _descriptor("catalog")),
)
BODY = HeadBody(  # version 2: one snapshot of a known device and folder set, one unknown
    frozenset(
        {
            _snapshot("monday", device="laptop", folders=["Documents", "Photos"]),
            _snapshot("tuesday", generation=1),
        }
    ),
    BODY_V1.forgotten,
    BODY_V1.friends,
    BODY_V1.catalog,
)


# --- fixed vectors: fail if the layout, the signing domain or the encryption changes ---
BODY_DIGEST = "85419ef48e4720fe2bf1a49d78213080742318704f298978fd338caca7f549d0"
SEALED_HEADER_HEX = (
    "5032424801"  # magic, version
    "3b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29"  # owner id
    "0000000000000007"  # seq
    "b403"  # 24 + 396 + 16 = 436 bytes follow: nonce, ciphertext, tag
    "000102030405060708090a0b0c0d0e0f1011121314151617"  # the nonce
)
SEALED_DIGEST = "52fa73c39ac569858a9fdbf6e276b5d5b4a9dd8a3589252eb28b9b60529e86f5"
FOLDER_SET_HEX = "fb07a988a2ee7a9168281884e05c0fb8"  # folder_set_id(["Documents", "Photos"])
# A version 1 body (as version 1 of this program wrote BODY_V1), still read.
BODY_V1_HEX = (
    "503248420102542a493658bda494ab13a35ab7be4b57008080d0e2c6bfce972fb94acd98a4309a355323ed7d"
    "eea8cf9add93cc0e207a79f97fac9e634dfa763e0101646727a1b164fa67bac6384bc0ed23db348903133c92"
    "bff3a760a7d4d72c342c846d37eb5542a7df5a8a680a28c43a8867018080d0e2c6bfce972fb94acd98a4309a"
    "355323ed7deea8cf9add93cc0e207a79f97fac9e634dfa763e0101646727a1b164fa67bac6384bc0ed23db34"
    "8903133c92bff3a760a7d4d72c342c8401c8137ce20e72d4ff6e7ac275cf23a7c7016bc2a2029c276bdf9433"
    "a54630e333a72a2c3db089209fa9da4fee8ac9829c6003616e6e011b2f6970342f3139322e302e322e312f74"
    "63702f343030312f616e6e010e313244334b6f6f57667269656e640100018080d0e2c6bfce972fa89af14b16"
    "1b4d203fc3ccc3595421304f27a86f0697c1aee9edd2bf5d46a70c01016483a3a9f158e9e63652c1699d8cc8"
    "45a5b723ed8688a2533c2e0ca4447765d932"
)
BODY_V1_DIGEST = "0c911d0eb20109b244a961fa9ff0c35cdfb7efb84ec9c5ee5b2b5b2cd41bd96f"


def test_body_fixed_vector():
    data = BODY.to_bytes()
    assert len(data) == 396
    assert data.startswith(b"P2HB\x02\x02")  # magic, version, two snapshots
    assert hashlib.blake2b(data, digest_size=32).hexdigest() == BODY_DIGEST
    assert HeadBody.from_bytes(data) == BODY
    assert folder_set_id(["Photos", "Documents", "Photos"]).hex() == FOLDER_SET_HEX


def test_a_version_1_body_is_still_read_and_written_as_version_2():
    data = bytes.fromhex(BODY_V1_HEX)
    assert hashlib.blake2b(data, digest_size=32).hexdigest() == BODY_V1_DIGEST
    body = HeadBody.from_bytes(data)
    assert body == BODY_V1 and all(t.device == "" and t.folder_set == b"" for t in body.tips)
    assert body.to_bytes()[:5] == b"P2HB\x02"
    # Merged with a version 2 copy of the same snapshot, the known device wins, either way.
    known = _snapshot("tuesday", generation=1, device="desktop", folders=["Music"])
    newer = HeadBody(frozenset({known}), frozenset(), frozenset(), None)
    assert merge(body, newer).tips == merge(newer, body).tips
    assert known in merge(body, newer).tips
    with pytest.raises(FormatError, match="version 3 is not supported"):
        HeadBody.from_bytes(b"P2HB\x03" + data[5:])


def test_sealed_head_fixed_vector():
    sealed = head._seal_head_with_nonce(SIGNING_KEY, HEAD_KEY, 7, BODY, bytes(range(24)))
    assert sealed.startswith(bytes.fromhex(SEALED_HEADER_HEX))
    assert hashlib.blake2b(sealed, digest_size=32).hexdigest() == SEALED_DIGEST
    assert open_head(sealed, OWNER_ID, HEAD_KEY) == (7, BODY)


# --- seal, verify, open ---


def test_round_trip_and_what_a_friend_can_check():
    sealed = seal_head(SIGNING_KEY, HEAD_KEY, 42, BODY)
    assert verify_head(sealed) == SignedHead(OWNER_ID, 42)
    assert verify_head(sealed, OWNER_ID) == SignedHead(OWNER_ID, 42)
    assert open_head(sealed, OWNER_ID, HEAD_KEY) == (42, BODY)
    assert BODY.to_bytes() not in sealed  # a friend sees only sizes and timing
    assert seal_head(SIGNING_KEY, HEAD_KEY, 42, BODY) != sealed  # a fresh nonce each time


def test_another_owner_is_refused():
    sealed = seal_head(SIGNING_KEY, HEAD_KEY, 1, BODY)
    other_id = bytes(OTHER_KEY.verify_key)
    with pytest.raises(IntegrityError, match="belongs to owner"):
        verify_head(sealed, other_id)
    with pytest.raises(IntegrityError, match="belongs to owner"):
        open_head(sealed, other_id, HEAD_KEY)


def test_a_head_signed_by_someone_else_for_our_id_is_refused():
    forged = bytearray(seal_head(OTHER_KEY, HEAD_KEY, 1, BODY))
    forged[5:37] = OWNER_ID
    with pytest.raises(IntegrityError, match="signature does not verify"):
        verify_head(bytes(forged), OWNER_ID)


def test_the_wrong_head_key_is_refused():
    sealed = seal_head(SIGNING_KEY, HEAD_KEY, 1, BODY)
    with pytest.raises(IntegrityError, match="cannot be decrypted"):
        open_head(sealed, OWNER_ID, bytes(32))


def test_every_flipped_bit_of_a_sealed_head_is_refused():
    sealed = head._seal_head_with_nonce(SIGNING_KEY, HEAD_KEY, 7, BODY, bytes(range(24)))
    for bit in range(len(sealed) * 8):
        damaged = bytearray(sealed)
        damaged[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(IntegrityError):
            verify_head(bytes(damaged))
        with pytest.raises(IntegrityError):
            open_head(bytes(damaged), OWNER_ID, HEAD_KEY)


def test_every_truncation_and_any_extra_byte_is_refused():
    sealed = seal_head(SIGNING_KEY, HEAD_KEY, 7, EMPTY)
    for cut in range(len(sealed)):
        with pytest.raises(IntegrityError):
            verify_head(sealed[:cut])
    with pytest.raises(FormatError, match="unexpected bytes"):
        verify_head(sealed + b"\0")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_raise_only_integrity_errors(data):
    prefix = b"P2BH\x01" + OWNER_ID + bytes(8)
    for candidate in (data, prefix + data):
        with pytest.raises(IntegrityError):
            verify_head(candidate)
        with pytest.raises(IntegrityError):
            open_head(candidate, OWNER_ID, HEAD_KEY)


def test_a_newer_version_is_refused_with_a_clear_message():
    sealed = bytearray(seal_head(SIGNING_KEY, HEAD_KEY, 7, EMPTY))
    sealed[4] = 2
    with pytest.raises(FormatError, match="newer p2pbackup"):
        verify_head(bytes(sealed))


def test_bad_arguments_are_programming_errors():
    with pytest.raises(ValueError, match="head key"):
        seal_head(SIGNING_KEY, bytes(31), 1, EMPTY)
    with pytest.raises(ValueError, match="64 bits"):
        seal_head(SIGNING_KEY, HEAD_KEY, 2**64, EMPTY)
    assert verify_head(seal_head(SIGNING_KEY, HEAD_KEY, 2**64 - 1, EMPTY)).seq == 2**64 - 1


# --- the body: canonical encoding, parsing garbage ---

# Small pools, so random heads share snapshot ids, manifests and friends and merges collide.
SNAPSHOT_IDS = [_id(f"snapshot {i}", 16) for i in range(4)]
OWNER_IDS = [_id(f"owner {i}") for i in range(3)]
DESCRIPTORS = [_descriptor(str(i)) for i in range(2)]

snapshot_refs = st.builds(
    SnapshotRef,
    st.sampled_from(SNAPSHOT_IDS),
    st.integers(0, 2),
    st.sampled_from([-1, 0, 1_700_000_000_000_000_000]),
    st.sampled_from(DESCRIPTORS),
    st.sampled_from(["", "laptop", "Zoë's desktop"]),
    st.sampled_from([b"", folder_set_id(["Documents"]), folder_set_id([])]),
)
friend_entries = st.builds(
    FriendEntry,
    st.sampled_from(OWNER_IDS),
    st.sampled_from(["ann", "bob", "Zoë"]),
    st.lists(st.sampled_from(["/ip4/192.0.2.1/tcp/1", "/dns/x.example/tcp/2"]), max_size=2).map(
        tuple
    ),
    st.lists(st.sampled_from(["12D3KooWa", "12D3KooWb"]), max_size=2).map(tuple),
    st.integers(0, 2),
    st.booleans(),
)
catalogs = st.none() | st.builds(CatalogRef, st.integers(0, 2), st.sampled_from(DESCRIPTORS))


@st.composite
def bodies(draw) -> HeadBody:
    forgotten = frozenset(draw(st.lists(st.sampled_from(SNAPSHOT_IDS), max_size=2)))
    tips = {t.snapshot_id: t for t in draw(st.lists(snapshot_refs, max_size=4))}
    friends = {f.owner_id: f for f in draw(st.lists(friend_entries, max_size=3))}
    return HeadBody(
        frozenset(t for i, t in tips.items() if i not in forgotten),
        forgotten,
        frozenset(friends.values()),
        draw(catalogs),
    )


@settings(max_examples=200, deadline=None)
@given(bodies())
def test_body_round_trip_is_canonical(body):
    data = body.to_bytes()
    assert HeadBody.from_bytes(data) == body
    assert HeadBody.from_bytes(data).to_bytes() == data


@settings(max_examples=100, deadline=None)
@given(bodies(), st.data())
def test_a_damaged_body_raises_or_changes_the_value(body, data):
    encoded = body.to_bytes()
    bit = data.draw(st.integers(0, len(encoded) * 8 - 1))
    damaged = bytearray(encoded)
    damaged[bit // 8] ^= 1 << (bit % 8)
    with contextlib.suppress(FormatError):
        assert HeadBody.from_bytes(bytes(damaged)) != body
    for cut in range(len(encoded)):
        with pytest.raises(FormatError):
            HeadBody.from_bytes(encoded[:cut])


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_random_body_bytes_raise_only_format_errors(data):
    for candidate in (data, b"P2HB\x01" + data):
        with contextlib.suppress(FormatError):
            HeadBody.from_bytes(candidate)


def test_unsorted_or_contradictory_bodies_are_refused():
    one, two = sorted(SNAPSHOT_IDS[:2])
    data = HeadBody(frozenset(), frozenset({one, two}), frozenset(), None).to_bytes()
    swapped = data.replace(one + two, two + one)
    with pytest.raises(FormatError, match="not sorted"):
        HeadBody.from_bytes(swapped)
    tip = _snapshot("x")
    with pytest.raises(ValueError, match="forgotten"):
        HeadBody(frozenset({tip}), frozenset({tip.snapshot_id}), frozenset(), None)
    with pytest.raises(ValueError, match="one version"):
        HeadBody(frozenset({tip, _snapshot("x", 1)}), frozenset(), frozenset(), None)
    with pytest.raises(ValueError, match="one entry per friend"):
        HeadBody(frozenset(), frozenset(), frozenset({_friend("a"), _friend("a", 2)}), None)


# --- merge: two devices publishing at once lose nothing ---


@settings(max_examples=200, deadline=None)
@given(bodies(), bodies(), bodies())
def test_merge_is_commutative_associative_and_idempotent(a, b, c):
    assert merge(a, b) == merge(b, a)
    assert merge(merge(a, b), c) == merge(a, merge(b, c))
    assert merge(a, a) == a
    assert merge(a, EMPTY) == a


@settings(max_examples=200, deadline=None)
@given(st.lists(bodies(), min_size=1, max_size=4))
def test_merge_loses_nothing(heads):
    merged = reduce(merge, heads)
    forgotten = frozenset().union(*(h.forgotten for h in heads))
    assert merged.forgotten == forgotten
    tips = {t.snapshot_id: t for t in merged.tips}
    friends = {f.owner_id: f for f in merged.friends}
    for h in heads:
        for tip in h.tips:
            if tip.snapshot_id not in forgotten:
                assert tips[tip.snapshot_id].generation >= tip.generation
        for friend in h.friends:
            assert friends[friend.owner_id].updated_at >= friend.updated_at
        if h.catalog is not None:
            assert merged.catalog.created_at_ns >= h.catalog.created_at_ns
    assert set(tips) <= {t.snapshot_id for h in heads for t in h.tips}


def test_merge_keeps_the_repacked_snapshot_and_never_resurrects_a_forgotten_one():
    monday, tuesday = _snapshot("monday"), _snapshot("tuesday")
    repacked = _snapshot("monday", generation=1, manifest="repacked")
    laptop = HeadBody(frozenset({monday, tuesday}), frozenset(), frozenset(), None)
    phone = HeadBody(frozenset({repacked}), frozenset({tuesday.snapshot_id}), frozenset(), None)
    merged = merge(laptop, phone)
    assert merged.tips == {repacked}
    assert merge(merged, laptop) == merged  # an old copy on a friend changes nothing


def test_a_removed_friend_stays_removed_until_updated_again():
    added, removed, readded = _friend("ann", 1), _friend("ann", 2, True), _friend("ann", 3)
    with_ann = HeadBody(frozenset(), frozenset(), frozenset({added}), None)
    without = HeadBody(frozenset(), frozenset(), frozenset({removed}), None)
    assert merge(with_ann, without).friends == {removed}
    again = HeadBody(frozenset(), frozenset(), frozenset({readded}), None)
    assert merge(merge(with_ann, without), again).friends == {readded}


def test_an_unfriend_in_the_same_second_as_the_pairing_wins_the_merge():
    from p2pbackup.core.head import FriendEntry, HeadBody, merge

    addresses, nodes = ("/ip4/127.0.0.1/tcp/1",), ("12D3KooWdave",)
    live = FriendEntry(b"\x05" * 32, "dave", addresses, nodes, 100, False)
    gone = FriendEntry(b"\x05" * 32, "dave", (), (), 100, True)

    def body(friend: FriendEntry) -> HeadBody:
        return HeadBody(frozenset(), frozenset(), frozenset({friend}), None)

    for a, b in ((live, gone), (gone, live)):
        (merged,) = merge(body(a), body(b)).friends
        assert merged.removed
