"""A friend's pool held in memory: the test grid and the offline demo.

It checks what a real storage server checks (the share is well formed and its
hash matches; the quota holds), so engine tests exercise the same refusals
they will meet over the network. ``online = False`` makes it behave like a
friend who went away.
"""

from __future__ import annotations

import io

from p2pbackup.core import erasure, head
from p2pbackup.errors import IntegrityError, PeerError, StorageError
from p2pbackup.storage.sharepool import block_proofs, check_same_version, prove_answer
from p2pbackup.storage.store import ShareKey, Usage


class MemoryShareStore:
    def __init__(self, name: str, quota: int, owner_id: bytes) -> None:
        self.name = name
        self.owner_id = owner_id
        self._head: bytes | None = None
        self.quota = quota
        self.online = True
        self.share_format = erasure.VERSION  # a test sets it lower to play an older friend
        self._shares: dict[ShareKey, bytes] = {}
        self._parts: dict[ShareKey, bytearray] = {}  # large shares arriving in pieces
        self._used = 0

    def _check_online(self) -> None:
        if not self.online:
            raise PeerError(f"Friend {self.name} is offline.")

    async def put(self, key: ShareKey, share: bytes) -> None:
        self._check_online()
        info = erasure.parse_share(share)
        if info.record_id != key.record_id or info.index != key.index:
            raise PeerError(f"{self.name}: the share does not match the key it was sent under")
        if key in self._shares:
            check_same_version(self._shares[key], share)
            return
        if self._used + len(share) > self.quota:
            raise StorageError(
                f"Friend {self.name} has no room left for you "
                f"({self._used} of {self.quota} bytes used)."
            )
        self._shares[key] = share
        self._used += len(share)

    async def get(self, key: ShareKey) -> bytes:
        self._check_online()
        try:
            return self._shares[key]
        except KeyError:
            raise PeerError(
                f"Friend {self.name} does not have share {key.index} "
                f"of record {key.record_id.hex()[:12]}."
            ) from None

    async def put_part(
        self, key: ShareKey, offset: int, reserve: int, last: bool, piece: bytes
    ) -> bool:
        self._check_online()
        if key in self._shares:
            if offset == 0:
                check_same_version(self._shares[key], piece)
            return False
        if offset == 0:
            if self._used + reserve > self.quota:
                raise StorageError(
                    f"No room left at {self.name} ({self._used} of {self.quota} bytes used)."
                )
            self._parts[key] = bytearray()
        pending = self._parts.get(key)
        if pending is None or len(pending) != offset:
            raise IntegrityError(f"A share piece at offset {offset} does not follow on.")
        pending += piece
        if last:
            await self.put(key, bytes(self._parts.pop(key)))  # checks it as a whole
        return True

    async def get_range(self, key: ShareKey, offset: int, length: int) -> bytes:
        return (await self.get(key))[offset : offset + length]

    async def prove(self, key: ShareKey, nonce: bytes) -> bytes:
        return prove_answer(nonce, await self.get(key))

    async def prove_blocks(
        self, key: ShareKey, blocks: list[int]
    ) -> list[tuple[bytes, list[bytes]]]:
        share = await self.get(key)
        return block_proofs(io.BytesIO(share).read, len(share), blocks)

    async def remove(self, key: ShareKey) -> None:
        self._check_online()
        share = self._shares.pop(key, None)
        if share is not None:
            self._used -= len(share)

    async def list(self) -> frozenset[ShareKey]:
        self._check_online()
        return frozenset(self._shares)

    async def stat(self) -> Usage:
        self._check_online()
        return Usage(self._used, self.quota)

    async def get_head(self) -> bytes | None:
        self._check_online()
        return self._head

    async def put_head(self, data: bytes) -> None:
        self._check_online()
        new = head.verify_head(data, self.owner_id)
        if self._head is not None:
            current = head.verify_head(self._head, self.owner_id)
            if new.seq <= current.seq:
                raise IntegrityError(
                    f"Friend {self.name} already has head {current.seq}; "
                    f"head {new.seq} would roll it back."
                )
        self._head = data

    def corrupt(self, key: ShareKey, at: int | None = None) -> None:
        """Flip one byte of a share (its middle one unless ``at``), as a lying or failing
        friend would."""
        share = bytearray(self._shares[key])
        share[len(share) // 2 if at is None else at] ^= 0x01
        self._shares[key] = bytes(share)
