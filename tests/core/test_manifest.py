"""Snapshot manifests: round trips, fixed vectors, path safety, and damaged bytes."""

from __future__ import annotations

import contextlib
import hashlib
from dataclasses import fields, replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pbackup.core import manifest as manifest_module
from p2pbackup.core.manifest import (
    ChainStep,
    Entry,
    EntryType,
    Manifest,
    diff,
)
from p2pbackup.core.refs import BlobRef, RecordDescriptor, StorageKind
from p2pbackup.errors import FormatError

FULL, DELTA, REVERSE = StorageKind.FULL, StorageKind.DELTA, StorageKind.REVERSE
FILE, DIR, SYMLINK = EntryType.FILE, EntryType.DIR, EntryType.SYMLINK


def _id(label: str, size: int = 32) -> bytes:
    return hashlib.blake2b(label.encode(), digest_size=size).digest()


def _descriptor(label: str, k: int = 1, n: int = 2) -> RecordDescriptor:
    return RecordDescriptor(
        _id(f"record {label}"), k, n, 1000, tuple(_id(f"{label} share {i}") for i in range(n))
    )


RECORDS = {d.record_id: d for d in (_descriptor("a"), _descriptor("b", 2, 3), _descriptor("c"))}
RECORD_IDS = sorted(RECORDS)


def _dir(path: str, mtime: int = 1_700_000_000_000_000_000) -> Entry:
    return Entry(path, DIR, 0o755, mtime, 0, "", b"", ())


def _empty(path: str) -> Entry:
    return Entry(path, FILE, 0o644, 0, 0, "", b"", ())


def _file(path: str, revs: tuple[str, ...] = ("v1",), record: int = 0, size: int = 10) -> Entry:
    chain = tuple(
        ChainStep(FULL if i == 0 else DELTA, _id(rev), BlobRef(RECORD_IDS[record], 7 * i, 5 + i))
        for i, rev in enumerate(revs)
    )
    return Entry(path, FILE, 0o644, 1_700_000_000_123_456_789, size, "", _id(revs[-1]), chain)


def _link(path: str, target: str) -> Entry:
    return Entry(path, SYMLINK, 0o777, -1, 0, target, b"", ())


def _build(entries, **overrides) -> Manifest:
    values = dict(
        snapshot_id=bytes(range(16)),
        generation=0,
        created_at_ns=1_700_000_000_000_000_000,
        device="laptop",
        parents=(),
        roots=("Documents",),
        entries=entries,
        descriptors=RECORDS,
    )
    values.update(overrides)
    return Manifest.build(**values)


def _unchecked(cls, *values):
    """An instance that skips validation, to encode what a forger could send."""
    instance = object.__new__(cls)
    for field, value in zip(fields(cls), values, strict=True):
        object.__setattr__(instance, field.name, value)
    return instance


def _unchecked_manifest(entries, records=None) -> bytes:
    m = _build([_dir("Documents")])
    if records is None:
        used = {s.blob.record_id for e in entries for s in e.chain}
        records = tuple(RECORDS[r] for r in sorted(used))
    return _unchecked(Manifest, m.snapshot_id, 0, 0, "", (), (), records, tuple(entries)).to_bytes()


SMALL = _build(
    [
        _dir("Documents"),
        _file("Documents/notes.txt", ("v1", "v2"), record=1, size=1234),
        _empty("Documents/empty"),
        _dir("Documents/photos", mtime=-5),
        _file("Documents/photos/été.jpg", ("v3",), record=0, size=99),
        _link("Documents/latest", "photos/été.jpg"),
    ],
    parents=(b"\x01" * 16,),
    generation=2,
)


# --- fixed vector: fails if the layout, an encoding rule or a constant changes ---
# --- fixed vector: fails if the layout, an encoding rule or a constant changes ---
# magic, version, snapshot id, generation 2, created_at_ns, "laptop", one parent, one root
SMALL_HEADER_HEX = (
    "5032424d01000102030405060708090a0b0c0d0e0f028080d0e2c6bfce972f066c6170746f70"
    "0101010101010101010101010101010101"
    "0109446f63756d656e7473"
)
# the six entries, after the record table: prefix-compressed paths, one two-step chain
SMALL_ENTRIES_HEX = (
    "06"
    "0009446f63756d656e747302ed038080d0e2c6bfce972f00"
    "09062f656d70747901a4030000"
    "0a066c617465737403ff0301001070686f746f732fc3a974c3a92e6a7067"
    "0a096e6f7465732e74787401a403aab4aed8c7bfce972fd209"
    "96b3504be7e37a6aa55faff3cd41266bf4db3b0654263e1d9b779d3b30174dd1"
    "02 01 ae11692325525e82337167fcfab34d45d1904ff786e2d4bf4be2d1c4878cd34c 01 00 05"
    "02 01 07 06"  # the last step's revision is the entry's: not repeated
    "0a0670686f746f7302ed030900"
    "100a2fc3a974c3a92e6a706701a403aab4aed8c7bfce972f63"
    "262495b1159c1cd7faf0da56deb6521bb2980d04435818906e417aae47604027"
    "01 01 00 00 05"
).replace(" ", "")
SMALL_DIGEST = "35597212d1670ea001bef6a54cc9d9d6a97466daa78594b8b01b1c2577797ed0"


def test_small_manifest_fixed_vector():
    data = SMALL.to_bytes()
    assert data.startswith(bytes.fromhex(SMALL_HEADER_HEX))
    assert data.endswith(bytes.fromhex(SMALL_ENTRIES_HEX))
    assert hashlib.blake2b(data, digest_size=32).hexdigest() == SMALL_DIGEST
    assert Manifest.from_bytes(data) == SMALL


# --- fixed vector with names that are not UTF-8 (issue 9): each is its bytes, and entries
# sort by code point of the surrogateescape'd name, which is not byte order for them ---
BYTE_NAMES = _build(
    [
        _dir("D\udcff"),  # b"D\xff"
        _empty("D\udcff/\ue000"),  # b"\xee\x80\x80": valid UTF-8, after \udcfe by code point
        _empty("D\udcff/\U00010000"),  # b"\xf0\x90\x80\x80"
        _empty("D\udcff/\udcfe"),  # b"\xfe"
        _link("D\udcff/l", "../\udcc3"),  # a target that is not UTF-8 either
    ],
    roots=("D\udcff",),
)
BYTE_NAMES_HEX = (
    "5032424d01000102030405060708090a0b0c0d0e0f008080d0e2c6bfce972f066c6170746f70"
    "00 01 02 44ff 00 05"  # no parent, the root b"D\xff", no record, five entries
    "00 02 44ff 02 ed03 8080d0e2c6bfce972f 00"
    "02 02 2f6c 03 ff03 01 00 04 2e2e2fc3"
    "03 01 fe 01 a403 00 00"
    "03 03 ee8080 01 a403 00 00"
    "03 04 f0908080 01 a403 00 00"
).replace(" ", "")


def test_names_that_are_not_utf8_fixed_vector():
    assert BYTE_NAMES.to_bytes().hex() == BYTE_NAMES_HEX
    parsed = Manifest.from_bytes(bytes.fromhex(BYTE_NAMES_HEX))
    assert parsed == BYTE_NAMES and parsed.find("D\udcff/\udcfe") is not None
    assert [e.path.encode("utf-8", "surrogateescape") for e in parsed.entries] == [
        b"D\xff", b"D\xff/l", b"D\xff/\xfe", b"D\xff/\xee\x80\x80", b"D\xff/\xf0\x90\x80\x80",
    ]  # fmt: skip


# --- round trips over random trees ---

_TEXT_NAME = st.text(
    st.characters(blacklist_characters="/\0", blacklist_categories=("Cs",)), min_size=1, max_size=5
)
# Names that are not valid UTF-8, as the OS hands them to Python (surrogateescape).
_BYTES_NAME = st.binary(min_size=1, max_size=5).map(
    lambda b: b.replace(b"/", b"_").replace(b"\0", b"_").decode("utf-8", "surrogateescape")
)
NAMES = st.one_of(_TEXT_NAME, _BYTES_NAME).filter(lambda n: n not in (".", ".."))
REV_IDS = st.sampled_from([_id(f"rev {i}") for i in range(4)])
INT64 = st.integers(-(2**63), 2**63 - 1)


@st.composite
def chains(draw) -> tuple[ChainStep, ...]:
    length = draw(st.integers(1, 4))
    kinds = [FULL] + [draw(st.sampled_from([DELTA, REVERSE])) for _ in range(length - 1)]
    return tuple(
        ChainStep(
            kind,
            draw(REV_IDS),
            BlobRef(
                draw(st.sampled_from(RECORD_IDS)),
                draw(st.integers(0, 2**48)),
                draw(st.integers(0, 2**48)),
            ),
        )
        for kind in kinds
    )


@st.composite
def entries(draw) -> list[Entry]:
    paths = draw(st.lists(st.lists(NAMES, min_size=1, max_size=4), max_size=10))
    directories = {"/".join(p[:i]) for p in paths for i in range(1, len(p))}
    leaves = {"/".join(p) for p in paths} - directories
    found = [
        Entry(d, DIR, draw(st.integers(0, 0o7777)), draw(INT64), 0, "", b"", ())
        for d in directories
    ]
    for path in leaves:
        kind = draw(st.sampled_from(["dir", "empty", "file", "link"]))
        mode, mtime = draw(st.integers(0, 0o7777)), draw(INT64)
        if kind == "dir":
            found.append(Entry(path, DIR, mode, mtime, 0, "", b"", ()))
        elif kind == "empty":
            found.append(Entry(path, FILE, mode, mtime, 0, "", b"", ()))
        elif kind == "link":
            found.append(Entry(path, SYMLINK, mode, mtime, 0, draw(NAMES), b"", ()))
        else:
            chain = draw(chains())
            size = draw(st.integers(1, 2**63 - 1))
            found.append(Entry(path, FILE, mode, mtime, size, "", chain[-1].rev_id, chain))
    return draw(st.permutations(found))


@st.composite
def manifests(draw) -> Manifest:
    snapshot_id = draw(st.binary(min_size=16, max_size=16))
    other_ids = st.binary(min_size=16, max_size=16).filter(lambda p: p != snapshot_id)
    return _build(
        draw(entries()),
        snapshot_id=snapshot_id,
        generation=draw(st.integers(0, 2**64 - 1)),
        created_at_ns=draw(INT64),
        device=draw(st.text(max_size=10)),
        parents=draw(st.lists(other_ids, max_size=3)),
        roots=draw(st.lists(NAMES, max_size=3)),
    )


@settings(max_examples=100, deadline=None)
@given(manifests())
def test_round_trip(m):
    data = m.to_bytes()
    parsed = Manifest.from_bytes(data)
    assert parsed == m
    assert parsed.to_bytes() == data  # one value, one encoding
    assert [e.path for e in m.entries] == sorted(e.path for e in m.entries)


@settings(max_examples=50, deadline=None)
@given(manifests(), st.data())
def test_a_flipped_bit_raises_or_changes_the_value(m, data):
    encoded = m.to_bytes()
    for _ in range(10):
        bit = data.draw(st.integers(0, len(encoded) * 8 - 1))
        damaged = bytearray(encoded)
        damaged[bit // 8] ^= 1 << (bit % 8)
        with contextlib.suppress(FormatError):
            assert Manifest.from_bytes(bytes(damaged)) != m


def test_every_flipped_bit_of_the_vector_raises_or_changes_the_value():
    encoded = SMALL.to_bytes()
    for bit in range(len(encoded) * 8):
        damaged = bytearray(encoded)
        damaged[bit // 8] ^= 1 << (bit % 8)
        with contextlib.suppress(FormatError):
            assert Manifest.from_bytes(bytes(damaged)) != SMALL


def test_every_truncation_and_any_extra_byte_is_refused():
    encoded = SMALL.to_bytes()
    for cut in range(len(encoded)):
        with pytest.raises(FormatError):
            Manifest.from_bytes(encoded[:cut])
    with pytest.raises(FormatError, match="unexpected bytes"):
        Manifest.from_bytes(encoded + b"\0")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_raise_only_format_errors(data):
    for candidate in (data, b"P2BM\x01" + data, SMALL.to_bytes()[:120] + data):
        with contextlib.suppress(FormatError):
            Manifest.from_bytes(candidate)


def test_a_newer_version_is_refused_with_a_clear_message():
    data = bytearray(SMALL.to_bytes())
    data[4] = 2
    with pytest.raises(FormatError, match="newer p2pbackup"):
        Manifest.from_bytes(bytes(data))


# --- path safety: restore must never write outside its destination ---

UNSAFE = ["../x", "/etc", "a//b", "a/./b", "x\0y", "", ".", "..", "a/", "a/..", "./a"]


@pytest.mark.parametrize("path", UNSAFE)
def test_unsafe_paths_are_refused_when_built(path):
    with pytest.raises(ValueError, match="path"):
        _empty(path)


@pytest.mark.parametrize("path", UNSAFE)
def test_unsafe_paths_are_refused_when_parsed(path):
    forged = _unchecked(Entry, path, FILE, 0o644, 0, 0, "", b"", ())
    with pytest.raises(FormatError, match="path"):
        Manifest.from_bytes(_unchecked_manifest([forged]))


@pytest.mark.parametrize(
    ("parent", "problem"),
    [(None, "missing"), (_empty("a"), "a file"), (_link("a", "/etc"), "a symlink")],
)
def test_an_entry_must_sit_in_a_directory_entry(parent, problem):
    tree = [e for e in (parent, _empty("a/passwd")) if e is not None]
    with pytest.raises(ValueError, match="not inside a directory"):
        _build(tree)
    with pytest.raises(FormatError, match="not inside a directory"):
        Manifest.from_bytes(_unchecked_manifest(tree))


@pytest.mark.parametrize(
    "tree", [[_empty("b"), _empty("a")], [_empty("a"), _empty("a")], [_dir("a"), _empty("a")]]
)
def test_unsorted_or_duplicate_entries_are_refused(tree):
    with pytest.raises(FormatError, match="not sorted and unique"):
        Manifest.from_bytes(_unchecked_manifest(tree))
    with pytest.raises(ValueError, match="not sorted and unique"):
        Manifest(bytes(16), 0, 0, "", (), (), (), tuple(tree))


def test_a_path_prefix_that_is_not_the_longest_is_refused():
    data = SMALL.to_bytes()
    forged = data.replace(b"\x09\x06/empty", b"\x08\x07s/empty")
    assert forged != data
    with pytest.raises(FormatError, match="longest prefix"):
        Manifest.from_bytes(forged)


def test_names_that_are_not_utf8_survive_byte_for_byte():
    name = b"caf\xe9 \xff".decode("utf-8", "surrogateescape")
    m = _build([_dir(name), _link(f"{name}/link", name)])
    assert b"caf\xe9 \xff" in m.to_bytes()
    assert Manifest.from_bytes(m.to_bytes()) == m


@pytest.mark.parametrize("name", ["\ud800", "\udcc3\udca9"])
def test_names_no_file_system_could_give_are_refused(name):
    with pytest.raises(ValueError):
        _empty(name)


# --- entry and chain rules ---


def _step(kind: StorageKind, rev: str = "v1") -> ChainStep:
    return ChainStep(kind, _id(rev), BlobRef(RECORD_IDS[0], 0, 1))


@pytest.mark.parametrize(
    ("chain", "problem"),
    [
        ((), "1 to 255 steps"),
        ((_step(DELTA),), "start with a full text"),
        ((_step(FULL), _step(FULL)), "only the first step"),
        ((_step(FULL, "other"),), "does not end at the entry's revision"),
        (tuple(_step(FULL if i == 0 else DELTA) for i in range(256)), "1 to 255 steps"),
    ],
)
def test_bad_chains_are_refused(chain, problem):
    with pytest.raises(ValueError, match=problem):
        Entry("f", FILE, 0o644, 0, 5, "", _id("v1"), chain)


def test_the_longest_chain_round_trips():
    chain = tuple(_step(FULL if i == 0 else DELTA, f"v{i}") for i in range(255))
    m = _build([Entry("f", FILE, 0o644, 0, 5, "", _id("v254"), chain)])
    assert Manifest.from_bytes(m.to_bytes()) == m


@pytest.mark.parametrize(
    "entry",
    [
        lambda: Entry("e", FILE, 0o644, 0, 0, "", b"", (_step(FULL),)),  # empty file with a chain
        lambda: Entry("e", FILE, 0o644, 0, 0, "", _id("v1"), ()),  # empty file with a revision
        lambda: Entry("d", DIR, 0o755, 0, 0, "", _id("v1"), (_step(FULL),)),
        lambda: Entry("d", DIR, 0o755, 0, 1, "", b"", ()),
        lambda: Entry("d", DIR, 0o755, 0, 0, "target", b"", ()),
        lambda: Entry("l", SYMLINK, 0o777, 0, 0, "x\0y", b"", ()),
        lambda: Entry("f", FILE, 0o10644, 0, 0, "", b"", ()),  # S_IFREG is not a permission bit
        lambda: Entry("f", FILE, 0o644, 2**63, 0, "", b"", ()),
        lambda: Entry("f", FILE, 0o644, 0, 2**63, "", b"", ()),
    ],
)
def test_inconsistent_entries_are_refused(entry):
    with pytest.raises(ValueError):
        entry()


def test_a_chain_must_find_its_record_in_the_table():
    outside = ChainStep(FULL, _id("v1"), BlobRef(_id("unknown record"), 0, 1))
    tree = [Entry("f", FILE, 0o644, 0, 5, "", _id("v1"), (outside,))]
    with pytest.raises(ValueError, match="no descriptor"):
        _build(tree)
    data = bytearray(SMALL.to_bytes())
    data[-3] = 2  # the last step's record index, past the table of two
    with pytest.raises(FormatError, match="record index"):
        Manifest.from_bytes(bytes(data))


def test_the_record_table_holds_each_used_record_once_and_nothing_else():
    assert SMALL.record_ids() == {RECORD_IDS[0], RECORD_IDS[1]}  # "c" is given but unused
    extra = (*SMALL.records, RECORDS[RECORD_IDS[2]])
    with pytest.raises(ValueError, match="no chain uses"):
        replace(SMALL, records=extra)
    with pytest.raises(ValueError, match="not sorted"):
        replace(SMALL, records=SMALL.records[::-1])


@pytest.mark.parametrize(
    "change",
    [
        {"snapshot_id": b"short"},
        {"parents": (b"\x02" * 16, b"\x01" * 16)},
        {"parents": (bytes(range(16)),)},  # its own parent
        {"device": "x" * 257},
        {"roots": ("",)},
        {"generation": -1},
        {"created_at_ns": -(2**63) - 1},
    ],
)
def test_bad_snapshot_fields_are_refused(change):
    with pytest.raises(ValueError):
        replace(SMALL, **change)


# --- helpers for browsing and the CLI's diff ---


def test_find_walk_and_totals():
    assert SMALL.find("Documents/photos/été.jpg").size == 99
    assert SMALL.find("Documents/photo") is None
    assert SMALL.find("zzz") is None
    assert [e.path for e in SMALL.walk("Documents/photos")] == ["Documents/photos/été.jpg"]
    assert [e.path for e in SMALL.walk("Documents/photos/")] == ["Documents/photos/été.jpg"]
    assert len(SMALL.walk("Documents")) == 5
    assert SMALL.walk("") == SMALL.entries
    assert SMALL.walk("Documents/notes.txt") == ()
    assert SMALL.file_count == 3
    assert SMALL.total_bytes == 1234 + 99


def test_walk_does_not_mix_up_sibling_names():
    m = _build(
        [_dir("a"), _empty("a b"), _empty("a/x"), _dir("a0"), _empty("a0/y"), _empty("a.txt")]
    )
    assert [e.path for e in m.walk("a")] == ["a/x"]


def test_diff():
    old = SMALL
    new = _build(
        [
            _dir("Documents"),
            _file("Documents/notes.txt", ("v1", "v2", "v4"), record=1, size=1300),  # changed
            _dir("Documents/photos", mtime=-5),
            _file("Documents/photos/été.jpg", ("v3",), record=2, size=99),  # same, repacked
            _link("Documents/latest", "photos/other.jpg"),  # retargeted
            _empty("Documents/new"),
        ],
    )
    changes = diff(old, new)
    assert [e.path for e in changes.added] == ["Documents/new"]
    assert [e.path for e in changes.removed] == ["Documents/empty"]
    assert [(a.path, b.path) for a, b in changes.changed] == [
        ("Documents/latest", "Documents/latest"),
        ("Documents/notes.txt", "Documents/notes.txt"),
    ]
    assert diff(new, new) == manifest_module.ManifestDiff((), (), ())


# --- scale (the time it takes is a figure of ``python -m p2pbackup.bench core``) ---


def test_a_hundred_thousand_entries_round_trip():
    """A sanity bound, loose on purpose: measured here ~0.3 s to encode, ~1.0 s to decode."""
    chains = [
        (ChainStep(FULL, _id(f"rev {f}"), BlobRef(RECORD_IDS[f % 2], f * 4096, 4096)),)
        for f in range(99)
    ]
    tree = [_dir("home")]
    for d in range(1000):
        folder = f"home/folder-{d:04d}"
        tree.append(_dir(folder))
        tree += [
            Entry(
                f"{folder}/file-{f:03d}.txt",
                FILE,
                0o644,
                1_700_000_000_000_000_000 + f,
                4096,
                "",
                chain[0].rev_id,
                chain,
            )
            for f, chain in enumerate(chains)
        ]
    m = _build(tree, roots=("home",))
    parsed = Manifest.from_bytes(m.to_bytes())
    assert parsed == m and len(parsed.entries) == 100_001
