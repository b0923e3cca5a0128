"""``python -m p2pbackup.bench core``: the pure pipeline, stage by stage and whole.

All figures come from one run on the same data: 256 MiB of random bytes and
256 MiB of text-like bytes, written to temporary files first so that the
chain reads files the way a backup does (and memory stays what a backup
needs, not what holding the data set would need).
"""

from __future__ import annotations

import hashlib
import os
import random
import resource
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import nacl.bindings
import zstandard

from p2pbackup.core import delta, erasure, seal
from p2pbackup.core.chunking import ChunkStream, Signature, SignatureBuilder, signature_of
from p2pbackup.core.manifest import ChainStep, Entry, EntryType, Manifest
from p2pbackup.core.refs import BlobRef, RecordDescriptor, StorageKind
from p2pbackup.core.wordlist import WORDS
from p2pbackup.engine.sourcefile import READ_WINDOW, file_segments, read_signature
from p2pbackup.engine.uploader import seal_and_encode

MiB = 1024 * 1024
FILE_SIZE = 16 * MiB
STAGE_SAMPLE = 32 * MiB
K, N = 3, 5


def _text_block(rng: random.Random, size: int) -> bytes:
    sentences = [
        (" ".join(rng.choices(WORDS, k=rng.randint(6, 18))).capitalize() + ". ").encode()
        for _ in range(50_000)
    ]
    out = bytearray()
    while len(out) < size:
        out += b"".join(rng.choices(sentences, k=2000))
        out += b"\n\n"
    return bytes(out[:size])


def _write_dataset(folder: str, kind: str, total: int) -> list[str]:
    rng = random.Random(kind)
    paths = []
    for i in range(total // FILE_SIZE):
        path = os.path.join(folder, f"{kind}-{i:03d}")
        data = os.urandom(FILE_SIZE) if kind == "random" else _text_block(rng, FILE_SIZE)
        with open(path, "wb") as f:
            f.write(data)
        paths.append(path)
    return paths


def _sample(paths: list[str]) -> bytes:
    parts = []
    for path in paths[: STAGE_SAMPLE // FILE_SIZE]:
        with open(path, "rb") as f:
            parts.append(f.read())
    return b"".join(parts)


def _rate(fn: Callable[[], object], size: int) -> float:
    started = time.perf_counter()
    fn()
    return round(size / (time.perf_counter() - started) / 1e6, 1)


def _segments(data: bytes, size: int = seal.SEGMENT_SIZE) -> list[memoryview]:
    view = memoryview(data)
    return [view[i : i + size] for i in range(0, len(view), size)]


def stage_rates(data: bytes) -> dict[str, float]:
    size = len(data)
    segments = _segments(data)
    chunks = []

    def _chunk() -> None:
        stream = ChunkStream()
        for window in _segments(data, READ_WINDOW):
            chunks.extend(stream.feed(window))
        chunks.extend(stream.finish())

    def _hash() -> None:
        for chunk in chunks:
            hashlib.blake2b(chunk, digest_size=32).digest()

    compressor = zstandard.ZstdCompressor(level=seal.DEFAULT_LEVEL)
    key = bytes(32)
    nonce = bytes(24)
    sealed_record = seal.seal(key, seal.Kind.FULL, bytes(32), data)
    encoded: list[tuple[RecordDescriptor, list[bytes]]] = []

    plain_segments = [bytes(s) for s in segments]  # PyNaCl takes bytes only

    def _encrypt() -> None:
        for segment in plain_segments:
            nacl.bindings.crypto_aead_xchacha20poly1305_ietf_encrypt(segment, b"", nonce, key)

    def _encode() -> None:
        encoded.append(erasure.encode(bytes(32), sealed_record, K, N))

    def _decode() -> None:
        descriptor, shares = encoded[0]
        erasure.decode(descriptor, {i: shares[i] for i in range(N - K, N)})  # parity-heavy

    return {
        "chunk": _rate(_chunk, size),
        "hash": _rate(_hash, size),
        "compress": _rate(lambda: [compressor.compress(s) for s in segments], size),
        "seal": _rate(_encrypt, size),
        "seal_with_compression": _rate(
            lambda: seal.seal(key, seal.Kind.FULL, bytes(32), data), size
        ),
        "erasure_encode": _rate(_encode, len(sealed_record)),
        "erasure_decode": _rate(_decode, len(sealed_record)),
    }


def _backup_file(path: str) -> int:
    """What a first backup does with one large file, minus the network."""
    signature, _ = read_signature(path, os.path.getsize(path), keep=False)
    plan = delta.plan_delta(Signature((), ()), signature)  # no parent yet: all literal
    assert plan.literal_bytes == signature.size
    rid = seal.record_id(bytes(32), seal.Kind.FULL, signature.to_bytes())
    _, shares = seal_and_encode(
        bytes(32), seal.Kind.FULL, rid, file_segments(path, signature.size), K, N
    )
    return sum(len(s) for s in shares)


def chain_rate(paths: list[str], threads: int = 2) -> float:
    size = sum(os.path.getsize(p) for p in paths)
    with ThreadPoolExecutor(threads) as pool:
        # One file per thread first: the first pass pays for imports, zfec tables and
        # growing the heap, which a long-running daemon pays once.
        list(pool.map(_backup_file, paths[:threads]))
        return _rate(lambda: list(pool.map(_backup_file, paths)), size)


def _delta_size(parent: Signature, pieces: list[bytes | memoryview]) -> int:
    """The delta of a new text given as pieces (no copy of the whole text is made)."""
    builder = SignatureBuilder()
    for piece in pieces:
        builder.feed(piece)
    new = builder.finish()
    starts = [0]
    for piece in pieces:
        starts.append(starts[-1] + len(piece))

    def read_new(offset: int, length: int) -> bytes:
        out = bytearray()
        for start, piece in zip(starts, pieces, strict=False):
            lo, hi = max(offset, start), min(offset + length, start + len(piece))
            if lo < hi:
                out += piece[lo - start : hi - start]
        return bytes(out)

    return len(delta.encode_delta(delta.plan_delta(parent, new), read_new))


def delta_sizes(size: int = 64 * MiB) -> dict[str, int]:
    original = memoryview(os.urandom(size))
    parent = signature_of(original)
    middle = size // 2
    flipped = bytes([original[middle] ^ 0xFF])
    return {
        "one_byte_changed": _delta_size(
            parent, [original[:middle], flipped, original[middle + 1 :]]
        ),
        "insert_4k_at_front": _delta_size(parent, [os.urandom(4096), original]),
        "mean_chunk": parent.size // max(1, len(parent.lengths)),
    }


def manifest_seconds(files: int = 100_000) -> dict[str, float]:
    """Encoding and parsing the manifest of a home folder: both run on every backup, restore
    or listing, whatever changed."""
    record = hashlib.sha256(b"pack").digest()
    descriptor = RecordDescriptor(record, 2, 4, files * 4096, (bytes(32),) * 4)
    entries = [Entry("home", EntryType.DIR, 0o755, 0, 0, "", b"", ())]
    for folder in range(files // 100):
        entries.append(Entry(f"home/d{folder:04d}", EntryType.DIR, 0o755, 0, 0, "", b"", ()))
        for f in range(100):
            rev = hashlib.sha256(b"%d/%d" % (folder, f)).digest()
            chain = (ChainStep(StorageKind.FULL, rev, BlobRef(record, f * 4096, 4096)),)
            entries.append(Entry(f"home/d{folder:04d}/f{f:03d}.txt", EntryType.FILE, 0o644,
                                 1_700_000_000 * 10**9, 4096, "", rev, chain))  # fmt: skip
    built = Manifest.build(
        snapshot_id=bytes(16), generation=0, created_at_ns=0, device="bench", parents=(),
        roots=("home",), entries=entries, descriptors={record: descriptor},
    )  # fmt: skip
    started = time.perf_counter()
    data = built.to_bytes()
    encoded = time.perf_counter()
    Manifest.from_bytes(data)
    return {
        "entries": len(entries),
        "encode_s": round(encoded - started, 2),
        "decode_s": round(time.perf_counter() - encoded, 2),
    }


def _peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def run(total: int = 256 * MiB) -> dict:
    with tempfile.TemporaryDirectory(prefix="p2pbackup-bench-") as folder:
        datasets = {
            kind: _write_dataset(folder, kind, total) for kind in ("random", "compressible")
        }
        # The chain first, so the peak memory it reports is the pipeline's own.
        chain = {kind: chain_rate(paths) for kind, paths in datasets.items()}
        chain_rss = _peak_rss_mb()
        chain_one_thread = {kind: chain_rate(paths, threads=1) for kind, paths in datasets.items()}
        stage_rates(_sample(datasets["random"])[: 8 * MiB])  # warm-up, as for the chain
        stages = {kind: stage_rates(_sample(paths)) for kind, paths in datasets.items()}
    deltas = delta_sizes()
    return {
        "data_mib": total // MiB,
        "k": K,
        "n": N,
        "stage_mb_s": {
            stage: {kind: stages[kind][stage] for kind in stages} for stage in stages["random"]
        },
        "chain_mb_s": chain,
        "chain_mb_s_one_thread": chain_one_thread,
        "delta_bytes": deltas,
        "manifest": manifest_seconds(),
        "delta_limit_bytes": 2 * deltas["mean_chunk"] + 4096,
        "peak_rss_mb": chain_rss,
        "peak_rss_mb_with_stage_samples": _peak_rss_mb(),
    }
