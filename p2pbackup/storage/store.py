"""The narrow interface to one friend's pool of my shares.

Everything that keeps shares — a friend's node over libp2p, the in-memory
pool of the test grid, later a disk pool — offers these few calls, and one
conformance suite (tests/storage/test_store_conformance.py) runs against each.
Retrying, bandwidth limits and caching wrap a store; they are not flags in it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class ShareKey:
    """Which share: the record it belongs to and its index among the n."""

    record_id: bytes
    index: int


@dataclass(frozen=True)
class Usage:
    """How much of a friend's space my shares use."""

    used: int
    quota: int

    @property
    def free(self) -> int:
        return max(0, self.quota - self.used)


class ShareStore(Protocol):
    """One friend's pool of my shares, as the owner sees it.

    A store may also say ``share_format``: the newest share format version
    (core/erasure.py) the friend reads, which a friend's node tells in its HELLO. One
    that does not say is taken to read format 2 (``engine/uploader.share_version``).
    """

    name: str

    async def put(self, key: ShareKey, share: bytes) -> None:
        """Store a share. Idempotent; refused (StorageError) beyond the quota, and
        (OtherVersionKept) when the friend keeps that share in another format version."""

    async def get(self, key: ShareKey) -> bytes:
        """The share's bytes; PeerError when it is missing or the friend is away."""

    async def prove(self, key: ShareKey, nonce: bytes) -> bytes:
        """The share hashed with ``nonce`` (sharepool.prove_answer): proof it is kept.
        PeerError when it is missing, as for ``get``; a nonce outside 16..64 bytes is
        refused (P2PBackupError)."""

    async def prove_blocks(
        self, key: ShareKey, blocks: list[int]
    ) -> list[tuple[bytes, list[bytes]]]:
        """The leaves that hold blocks of a share, with their sibling hashes
        (sharepool.block_proofs), which the owner checks against the share hash
        (merkle.verify_block). NoBlockProofs for a share of format version 1; PeerError
        when it is missing."""

    async def put_part(
        self, key: ShareKey, offset: int, reserve: int, last: bool, piece: bytes
    ) -> bool:
        """Append a piece of a large share (sharepool.SharePool.put_part); False when the
        friend already keeps the share, so the rest need not be sent. OtherVersionKept, for
        the first piece, when what it keeps is of another format version."""

    async def get_range(self, key: ShareKey, offset: int, length: int) -> bytes:
        """Up to ``length`` bytes of a share from ``offset``."""

    async def remove(self, key: ShareKey) -> None:
        """Forget a share; removing a missing share is not an error."""

    async def list(self) -> frozenset[ShareKey]:
        """Every share of mine this friend keeps."""

    async def stat(self) -> Usage:
        """Bytes used and the quota this friend gives me."""

    async def get_head(self) -> bytes | None:
        """My signed head as this friend keeps it, or None."""

    async def put_head(self, head: bytes) -> None:
        """Replace my head; refused (IntegrityError) unless its sequence number is higher."""
