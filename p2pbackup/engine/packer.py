"""Small blobs (small files, small deltas) gathered into pack records.

A tree of many small files becomes a few records, not one request per file
per share. Each blob added comes with a callback, told where the blob is
once its pack is sealed and on friends; nothing has to wait in a task of its
own for that.
"""

from __future__ import annotations

from collections.abc import Callable

import trio

from p2pbackup.core.keys import OwnerKeys
from p2pbackup.core.refs import BlobRef
from p2pbackup.core.seal import Kind, record_id
from p2pbackup.engine.uploader import Uploader, split_segments

PACK_TARGET = 2 * 1024 * 1024  # a pack is sealed once it holds this much
PACKS_IN_FLIGHT = 2  # packs being sealed or uploaded at once

Sealed = Callable[[BlobRef], None]  # told where its blob is, once the pack is on friends


class _Pack:
    def __init__(self) -> None:
        self.data = bytearray()
        self.waiters: list[tuple[int, int, Sealed]] = []


class Packer:
    """The open pack, and the packs being sealed and uploaded in ``nursery``."""

    def __init__(self, keys: OwnerKeys, uploader: Uploader, nursery: trio.Nursery) -> None:
        self._keys = keys
        self._uploader = uploader
        self._nursery = nursery
        self._open = _Pack()
        self._flushes = trio.Semaphore(PACKS_IN_FLIGHT)

    @property
    def waiting(self) -> bool:
        """Blobs are in the open pack: someone must flush it."""
        return bool(self._open.waiters)

    async def add(self, blob: bytes, sealed: Sealed) -> None:
        """Put ``blob`` in the open pack. If that fills it, seal it in the background; if
        PACKS_IN_FLIGHT packs are already on their way, wait for one of them first."""
        pack = self._open
        pack.waiters.append((len(pack.data), len(blob), sealed))
        pack.data += blob
        if len(pack.data) >= PACK_TARGET:
            # Reading small files outruns sealing and uploading them: without this wait
            # a tree of small files would sit in memory whole, in packs queued for upload.
            await self._flushes.acquire()
            self._nursery.start_soon(self._flush, True)

    async def flush(self) -> None:
        """Seal and upload the open pack now, and tell its blobs where they are."""
        await self._flush(False)

    async def _flush(self, slot_taken: bool) -> None:
        try:
            pack, self._open = self._open, _Pack()
            if not pack.waiters:
                return
            data, pack.data = bytes(pack.data), bytearray()  # one copy held while sealing
            rid = record_id(self._keys.record_id_key, Kind.PACK, data)
            await self._uploader.store(Kind.PACK, rid, split_segments(data))
            for offset, length, sealed in pack.waiters:
                sealed(BlobRef(rid, offset, length))
        finally:
            if slot_taken:
                self._flushes.release()
