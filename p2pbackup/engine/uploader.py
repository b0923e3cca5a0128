"""Stores records on friends: seal, erasure-code, place, upload.

A record already stored (same id, so same content) is not sent again: that
is what makes re-running an interrupted backup cheap. Sealing and encoding
run in a worker thread (zfec, zstd and libsodium release the GIL, so two
records are processed on two cores); uploads to different friends run
concurrently. A friend that refuses or fails gets its shares moved to other
friends, within the same safety rule.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace

import trio

from p2pbackup.core import erasure, placement
from p2pbackup.core.keys import OwnerKeys
from p2pbackup.core.refs import RecordDescriptor
from p2pbackup.core.seal import SEGMENT_SIZE, Kind, Sealer, max_sealed_length
from p2pbackup.engine import streaming
from p2pbackup.engine.events import EventSink, FriendTrouble, RecordStored
from p2pbackup.engine.state import BackupState, StoredRecord
from p2pbackup.errors import (
    IntegrityError,
    OtherVersionKept,
    PeerError,
    PlacementError,
    StorageError,
)
from p2pbackup.storage.store import ShareKey, ShareStore


def share_version(stores: Mapping[str, ShareStore], friends: Iterable[str]) -> int:
    """The share format to write: the newest that every friend of this run reads, since a
    share may later move to any of them (a repair writes the version it finds). A store
    that does not say reads format 2 (store.py)."""
    said = (getattr(stores[f], "share_format", erasure.TREE_VERSION) for f in friends)
    return min(erasure.VERSION, *said)


class _RecordVersion:
    """The share format of one record's upload: the run's, until a friend turns out to keep
    a share of the record in another (another device of the owner stored it before). The
    record is then made in that one, so that every share of a record is of one format, as
    a repair expects: the first such friend decides, and one that disagrees has failed."""

    def __init__(self, version: int) -> None:
        self.now = self._newest = version
        self._adopted = False

    def adopt(self, failure: streaming.FriendFailed) -> bool:
        """Whether ``failure`` was only a friend keeping the record in another version,
        one that every friend of the run reads."""
        if not isinstance(failure, streaming.KeptInOtherVersion):
            return False
        if failure.version > self._newest:
            return False
        if not self._adopted:
            self.now, self._adopted = failure.version, True
        return failure.version == self.now


def _with_version(shares: list[bytes], version: int) -> list[bytes]:
    return [erasure.with_version(share, version) for share in shares]


def seal_and_encode(
    data_key: bytes, kind: Kind, record_id: bytes, segments: Iterable[bytes], k: int, n: int,
    version: int = erasure.VERSION,
) -> tuple[RecordDescriptor, list[bytes]]:  # fmt: skip
    """Seal plaintext segments (each at most SEGMENT_SIZE) and encode them into n shares."""
    sealer = Sealer(data_key, kind, record_id)
    encoder = erasure.ShareEncoder(record_id, k, n, version=version)
    pieces: list[list[bytes]] = [[] for _ in range(n)]

    def _add(out: list[bytes]) -> None:
        for i, piece in enumerate(out):
            if piece:
                pieces[i].append(piece)

    _add(encoder.feed(sealer.header))
    pending: bytes | None = None
    for segment in segments:
        if pending is not None:
            _add(encoder.feed(sealer.seal_segment(pending, last=False)))
        pending = segment
    _add(encoder.feed(sealer.seal_segment(pending or b"", last=True)))
    _add(encoder.finish())
    shares = []
    for share_pieces in pieces:  # one share's pieces freed as soon as it is joined
        shares.append(b"".join(share_pieces))
        share_pieces.clear()
    return encoder.descriptor, shares


def split_segments(data: bytes | memoryview) -> Iterable[bytes]:
    view = memoryview(data)
    for start in range(0, len(view), SEGMENT_SIZE):
        yield view[start : start + SEGMENT_SIZE]


class Uploader:
    def __init__(
        self,
        keys: OwnerKeys,
        stores: Mapping[str, ShareStore],
        state: BackupState,
        events: EventSink,
        *,
        k: int,
        n: int,
        survive: int,
        room: Mapping[str, int],
        workers: trio.CapacityLimiter,
    ) -> None:
        self._keys = keys
        self._stores = stores
        self._state = state
        self._events = events
        self._k, self._n, self._survive = k, n, survive
        self._room = dict(room)
        self._failed: dict[str, str] = {}  # friend -> why it takes no more shares this run
        self._workers = workers
        self._version = share_version(stores, room)

    async def store(
        self, kind: Kind, record_id: bytes, segments: Iterable[bytes]
    ) -> RecordDescriptor:
        known = self._state.records.get(record_id)
        if known is not None:
            return known.descriptor
        descriptor, shares = await trio.to_thread.run_sync(
            seal_and_encode,
            self._keys.data_key,
            kind,
            record_id,
            segments,
            self._k,
            self._n,
            self._version,
            limiter=self._workers,
        )
        descriptor, placed = await self._upload(descriptor, shares)
        # No proof pairs: a share of format 2 or 3 is proved by its blocks (engine/audit.py).
        self._state.record_stored(record_id, StoredRecord(descriptor, placed))
        self._events(
            RecordStored(record_id, descriptor.length, tuple(sorted(set(placed.values()))))
        )
        return descriptor

    async def store_stream(
        self,
        kind: Kind,
        record_id: bytes,
        open_segments: Callable[[], Iterable[bytes]],
        size: int,
    ) -> RecordDescriptor:
        """``store`` for a record too large to hold: sealed, encoded and sent a batch at a
        time. ``open_segments`` is called again if a friend fails and the record restarts."""
        known = self._state.records.get(record_id)
        if known is not None:
            return known.descriptor
        reserve = erasure.share_size(max_sealed_length(size), self._k)
        placed: dict[int, str] = {}  # kept across restarts by friends that did not fail
        version = _RecordVersion(self._version)
        while True:
            todo = self._place(reserve, placed)  # PlacementError once nobody is left
            for friend in todo.values():
                self._room[friend] -= reserve
            placed.update(todo)
            self._state.sending(record_id, todo)  # committed before a byte of them leaves
            producer = streaming.Producer(
                self._keys.data_key, kind, record_id, open_segments(), self._k, self._n, 0,
                version.now,
            )  # fmt: skip
            try:
                await streaming.upload_stream(
                    self._stores, record_id, placed, reserve, producer, self._workers
                )
                break
            except streaming.FriendsFailed as exc:
                # A friend that keeps a share in another version stopped the upload before
                # any friend had a whole share: the record starts again in that version.
                for failure in exc.failures:
                    if not version.adopt(failure):
                        self._friend_failed(failure.friend, failure.reason)
                # A failed friend's shares, partial or whole, do not count: placed again.
                for index, friend in list(placed.items()):
                    if friend in self._failed:
                        del placed[index]
                        self._room[friend] += reserve
        descriptor = producer.descriptor
        used = erasure.share_size(descriptor.length, self._k)
        for friend in placed.values():
            self._room[friend] += reserve - used
        self._state.record_stored(record_id, StoredRecord(descriptor, dict(placed)))
        self._events(
            RecordStored(record_id, descriptor.length, tuple(sorted(set(placed.values()))))
        )
        return descriptor

    def _friend_failed(self, friend: str, reason: str) -> None:
        """The friend takes no more shares in this run; said once, with its reason."""
        if friend not in self._failed:
            self._failed[friend] = reason
            self._events(FriendTrouble(friend, reason))

    def _place(self, share_size: int, existing: dict[int, str]) -> dict[int, str]:
        friends = [
            placement.FriendRoom(name, free)
            for name, free in self._room.items()
            if name not in self._failed
        ]
        try:
            wanted = placement.place(
                self._k, self._n, share_size, friends, survive=self._survive, existing=existing
            )
        except PlacementError as exc:
            if not self._failed:
                raise
            failed = "; ".join(  # by the names people know them by, not the engine's keys
                f"{self._stores[key].name}: {why}" for key, why in sorted(self._failed.items())
            )
            raise PlacementError(
                f"{exc.message} Friends that failed during this run: {failed}"
            ) from exc
        return {i: f for i, f in wanted.items() if i not in existing}

    async def _upload(
        self, descriptor: RecordDescriptor, shares: list[bytes]
    ) -> tuple[RecordDescriptor, dict[int, str]]:
        """Put every share on a friend: who keeps which share, and the record's descriptor,
        in the share format of any share a friend kept already (see ``_RecordVersion``)."""
        share_size, record_id = len(shares[0]), descriptor.record_id
        placed: dict[int, str] = {}
        version = _RecordVersion(shares[0][4])
        while len(placed) < self._n:
            todo = self._place(share_size, placed)
            for friend in todo.values():
                self._room[friend] -= share_size
            self._state.sending(record_id, todo)
            results: dict[int, str | None] = {}
            kept: dict[int, streaming.KeptInOtherVersion] = {}

            async def _put(index: int, friend: str, results=results, kept=kept) -> None:
                key = ShareKey(record_id, index)
                try:
                    try:
                        await self._stores[friend].put(key, shares[index])
                    except OtherVersionKept:
                        got = await streaming.kept_version(self._stores[friend], key)
                        kept[index] = streaming.KeptInOtherVersion(friend, index, got)
                    results[index] = friend
                except (PeerError, StorageError, IntegrityError) as exc:  # a refusal too
                    self._friend_failed(friend, exc.message)
                    results[index] = None
                except streaming.FriendFailed as exc:
                    self._friend_failed(friend, exc.reason)
                    results[index] = None

            async with trio.open_nursery() as nursery:
                for index, friend in todo.items():
                    nursery.start_soon(_put, index, friend)
            was = version.now
            for index, got in kept.items():
                if not version.adopt(got):
                    self._friend_failed(got.friend, got.reason)
                    results[index] = None
            if version.now != was:  # a friend keeps this record in another version
                shares[:] = await trio.to_thread.run_sync(
                    _with_version, shares, version.now, limiter=self._workers
                )
                descriptor = replace(
                    descriptor, share_hashes=tuple(s[-erasure.HASH_SIZE :] for s in shares)
                )
                # Friends given a share in the old version (this round or before) get it
                # again in the record's; the old one was theirs for a moment only.
                given = {**placed, **{i: f for i, f in results.items() if f is not None}}
                for index, friend in given.items():
                    if index not in kept and not await self._give_again(
                        friend, ShareKey(record_id, index), shares[index]
                    ):
                        placed.pop(index, None)
                        results[index] = None
            # Failed friends are excluded now, so the next round places the rest elsewhere
            # or raises PlacementError when nobody is left.
            placed.update({i: f for i, f in results.items() if f is not None})
        return descriptor, placed

    async def _give_again(self, friend: str, key: ShareKey, share: bytes) -> bool:
        try:
            await self._stores[friend].remove(key)
            await self._stores[friend].put(key, share)
        except (PeerError, StorageError, IntegrityError) as exc:
            self._friend_failed(friend, exc.message)
            return False
        return True
