"""Checking a share's bytes by ranges: memory bounded by one read, not by the share.

``verify --read-data`` reads each share READ_SIZE bytes at a time (GET_RANGE)
and hashes it as it comes, in a worker thread, into the share's own checks
(``erasure.ShareChecker``: layout, self-hash) and the descriptor's hash. The
fresh proof pairs for later plain ``verify`` runs are hashed in the same pass,
for a version-1 share only (its header says so, and the hash checked at the end
binds the header): version 2 proves by its blocks. A share's size follows from
the descriptor alone (a body is ceil(length / k) bytes whatever the block size),
so the last read asks for one byte more: a share longer than it should be is
damaged too.
"""

from __future__ import annotations

import hashlib

import nacl.utils
import trio

from p2pbackup.core import erasure
from p2pbackup.core.refs import RecordDescriptor
from p2pbackup.errors import IntegrityError
from p2pbackup.storage.sharepool import PROVE_PERSON_v1
from p2pbackup.storage.store import ShareKey, ShareStore

READ_SIZE = 1 << 20  # bytes per range request: what one check holds at a time
NONCE_SIZE = 16


class ShareHasher:
    """Everything a share's bytes are hashed into, fed in order: its checks and ``count``
    fresh proof pairs (nonce, answer), as ``sharepool.prove_answer`` would give them."""

    def __init__(self, count: int) -> None:
        self.checker = erasure.ShareChecker()
        self._nonces = [nacl.utils.random(NONCE_SIZE) for _ in range(count)]
        self._provers = [
            hashlib.blake2b(key=nonce, digest_size=32, person=PROVE_PERSON_v1)
            for nonce in self._nonces
        ]

    def feed(self, data: bytes | memoryview) -> None:
        self.checker.feed(data)
        for prover in self._provers:
            prover.update(data)

    def challenges(self) -> list[tuple[bytes, bytes]]:
        return [(n, p.digest()) for n, p in zip(self._nonces, self._provers, strict=True)]


async def check_share(
    store: ShareStore,
    descriptor: RecordDescriptor,
    index: int,
    workers: trio.CapacityLimiter,
    challenges: int,
) -> list[tuple[bytes, bytes]]:
    """Read share ``index`` from ``store`` by ranges and check it against the descriptor;
    fresh proof pairs for it. IntegrityError when it is damaged; PeerError when it is
    missing or the friend went away."""
    key = ShareKey(descriptor.record_id, index)
    size = erasure.share_size(descriptor.length, descriptor.k)
    hasher: ShareHasher | None = None
    offset = 0
    while offset <= size:
        want = min(READ_SIZE, size + 1 - offset)  # one byte past the end, at the end
        data = await store.get_range(key, offset, want)
        if len(data) > want:
            raise IntegrityError(f"A friend answered {len(data)} bytes to a read of {want}.")
        if hasher is None:  # pairs only for a version-1 share: later ones prove by blocks
            flat = len(data) > 4 and data[4] == erasure.FLAT_VERSION
            hasher = ShareHasher(challenges if flat else 0)
        if data:
            await trio.to_thread.run_sync(hasher.feed, data, limiter=workers)
        offset += len(data)
        if len(data) < want:
            break  # the share's end; a size other than ``size`` fails the checks below
    assert hasher is not None  # the loop ran once at least
    # The share's checks: the last bytes are its hash, so this is cheap.
    erasure.verify_checked(descriptor, index, hasher.checker)
    return hasher.challenges()
