"""What a backup and a restore must spend in compiled code alone, per GB of source.

Each stage the design requires runs over the same random bytes on one core,
with no event loop, no transport and no Python around it but a loop: the
signature (content-defined cuts and a BLAKE2b per chunk), the seal (a zstd
attempt and XChaCha20-Poly1305), zfec's parity, the share tree over the
n/k share bytes per source byte, and Noise's ChaCha20-Poly1305 over the same
bytes on the wire. Their sum is a floor: the owner's CPU per GB cannot go
below it in any language without changing what is computed. Against restic's
whole CPU per GB in the same run, it says how much is left for everything
else (reading, sockets, the event loop, Yamux and the protocol).

``bench backup`` runs it in a process of its own (``python -m
p2pbackup.bench.floor K N [MiB]``), beside restic, in the same run.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable

import zfec
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from p2pbackup.bench.cpu import per_gb
from p2pbackup.core import erasure, merkle
from p2pbackup.core.chunking import SignatureBuilder
from p2pbackup.core.seal import SEGMENT_SIZE, Kind, RecordOpener, Sealer

SAMPLE = 64 << 20
NOISE_PLAINTEXT = 65535 - 16  # the most one Noise message carries
ROUNDS = 3


def _cpu_per_gb(fn: Callable[[], object], size: int) -> float:
    """The fastest of ``ROUNDS`` runs, in CPU seconds per GB of ``size`` source bytes."""
    best = float("inf")
    for _ in range(ROUNDS):
        started = time.process_time()
        fn()
        best = min(best, time.process_time() - started)
    return per_gb(best, size)


def run(k: int, n: int, size: int = SAMPLE) -> dict:
    data = os.urandom(size)
    view = memoryview(data)
    key, record_id = os.urandom(32), os.urandom(32)
    segments = [view[i : i + SEGMENT_SIZE] for i in range(0, size, SEGMENT_SIZE)]
    share_bytes = size * n // k
    block = erasure.BLOCK_SIZE
    encoder = zfec.Encoder(k, n)
    wire = ChaCha20Poly1305(os.urandom(32))
    nonce = bytes(12)

    def _signature() -> None:
        builder = SignatureBuilder()
        for segment in segments:
            builder.feed(segment)
        builder.finish()

    def _seal() -> list[bytes]:
        sealer = Sealer(key, Kind.FULL, record_id)
        last = len(segments) - 1
        return [sealer.header] + [sealer.seal_segment(s, i == last) for i, s in enumerate(segments)]

    sealed = _seal()

    def _parity() -> None:
        for i in range(0, size - k * block + 1, k * block):
            encoder.encode([view[i + j * block : i + (j + 1) * block] for j in range(k)],
                           list(range(k, n)))  # fmt: skip

    def _share_tree() -> None:
        for _ in range(n):  # n shares of size / k bytes each
            tree = merkle.MerkleBuilder(merkle.SHA256_16K)
            for i in range(0, size // k, SEGMENT_SIZE):
                tree.feed(view[i : min(i + SEGMENT_SIZE, size // k)])
            tree.digest()

    def _noise(total: int) -> Callable[[], None]:
        def _encrypt() -> None:
            for _ in range(total // size):
                for i in range(0, size, NOISE_PLAINTEXT):
                    wire.encrypt(nonce, view[i : i + NOISE_PLAINTEXT], None)

        return _encrypt

    def _open() -> None:
        opener = RecordOpener(key, expected_record_id=record_id, expected_kind=Kind.FULL)
        for piece in sealed:
            opener.feed(piece)
        opener.finish()

    backup = {
        "signature": _cpu_per_gb(_signature, size),
        "seal": _cpu_per_gb(_seal, size),
        "erasure_parity": _cpu_per_gb(_parity, size),
        "share_tree": _cpu_per_gb(_share_tree, size),
        "noise": _cpu_per_gb(_noise(share_bytes), size),
    }
    restore = {
        "noise": _cpu_per_gb(_noise(size), size),  # k shares: the source's size
        "open": _cpu_per_gb(_open, size),
    }
    return {
        "k": k,
        "n": n,
        "backup": {**backup, "sum": round(sum(backup.values()), 2)},
        "restore": {**restore, "sum": round(sum(restore.values()), 2)},
    }


if __name__ == "__main__":  # a process of its own, so the sample is not in another's RSS
    mib = int(sys.argv[3]) if len(sys.argv) > 3 else SAMPLE >> 20
    print(json.dumps(run(int(sys.argv[1]), int(sys.argv[2]), mib << 20)))
