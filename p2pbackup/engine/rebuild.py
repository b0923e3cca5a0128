"""Rebuilding lost shares of a large record, a batch of erasure segments at a time.

``verify --repair`` of a record whose shares are large never holds a share:
k good shares are read in ranges (REBUILD_SEGMENTS blocks of each at once),
decoded segment by segment and encoded again (``erasure.ShareEncoder``, the
same encoding as the upload's, so byte-identical) in a worker thread; the
pieces of the shares being rebuilt go out with ``put_part`` as they come.
Memory is a few segments per batch, whatever the record's size.

The sources' hashes are known only at their end, so the last piece of every
rebuilt share is held back until every share the encoder made hashes as the
descriptor says: a friend's ``put_part`` checks only the share's self-hash,
which a wrong decode would make consistent. A bad or missing source means
starting again without it; a rebuilt share half-sent is started over at
offset 0 (the friend drops its partial upload).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import trio

from p2pbackup.core import erasure
from p2pbackup.core.refs import RecordDescriptor
from p2pbackup.engine import events as ev
from p2pbackup.engine.failures import leaves
from p2pbackup.engine.rangecheck import ShareHasher
from p2pbackup.errors import IntegrityError, PeerError, StorageError
from p2pbackup.storage.store import ShareKey, ShareStore

REBUILD_SEGMENTS = 4  # erasure segments per batch (a 256 KiB block of each share each)


class _SourceFailed(Exception):
    """A source share that could not be read, or turned out bad."""

    def __init__(self, index: int, friend: str, reason: str, away: bool = False) -> None:
        super().__init__(reason)
        self.index, self.friend, self.reason, self.away = index, friend, reason, away


@dataclass
class Rebuilt:
    sent: dict[int, str]  # share index -> friend now holding it
    challenges: list[list[tuple[bytes, bytes]]]  # fresh proof pairs, per share index


class _Coder:
    """The worker-thread side: hashes the sources, decodes and encodes again, and hashes
    every share the encoder makes into its proof pairs."""

    def __init__(
        self,
        d: RecordDescriptor,
        sources: Sequence[int],
        block_size: int,
        challenges: int,
        keep: Iterable[int],
        version: int,
    ) -> None:
        self._d = d
        self._keep = frozenset(keep)  # the shares being sent: the others are only hashed
        self._sources = tuple(sources)
        self._decoder = erasure.SegmentDecoder(d, self._sources, block_size)
        # The sources' format (their hash is flat or a block tree's root), so the shares
        # made again hash as the descriptor says.
        self._encoder = erasure.ShareEncoder(d.record_id, d.k, d.n, block_size, version)
        self._source_hashes = {i: erasure.ShareDigest() for i in self._sources}
        # Proof pairs only for version-1 shares: later ones prove by their blocks.
        pairs = challenges if version == erasure.FLAT_VERSION else 0
        self._made = [ShareHasher(pairs) for _ in range(d.n)]

    def hash_sources(self, pieces: Mapping[int, bytes]) -> None:
        for index, piece in pieces.items():
            self._source_hashes[index].update(piece)

    def segments(
        self, batch: Sequence[tuple[int, int, int]], blocks: Mapping[int, bytes], start: int
    ) -> list[bytes]:
        """The next pieces of the kept shares (empty for the others), from a batch of
        segments' blocks."""
        self.hash_sources(blocks)
        out: list[list[bytes]] = [[] for _ in range(self._d.n)]
        for offset, length, _ in batch:
            views = [memoryview(blocks[i])[offset - start : offset - start + length]
                     for i in self._sources]  # fmt: skip
            for i, piece in enumerate(self._encoder.feed(self._decoder.decode(views))):
                out[i].append(piece)
        return self._made_pieces(out)

    def finish(self) -> list[bytes]:
        return self._made_pieces([[piece] for piece in self._encoder.finish()])

    def _made_pieces(self, out: list[list[bytes]]) -> list[bytes]:
        for hasher, pieces in zip(self._made, out, strict=True):
            for piece in pieces:
                hasher.feed(piece)
        return [b"".join(pieces) if i in self._keep else b"" for i, pieces in enumerate(out)]

    def bad_sources(self) -> list[int]:
        return [i for i, h in self._source_hashes.items()
                if h.digest() != self._d.share_hashes[i]]  # fmt: skip

    def rebuilt_right(self) -> bool:
        made = self._encoder.descriptor
        return made is not None and made.share_hashes == self._d.share_hashes

    def challenges(self) -> list[list[tuple[bytes, bytes]]]:
        return [hasher.challenges() for hasher in self._made]


@dataclass
class _Blocks:
    batch: list[tuple[int, int, int]]  # the segments' layout entries
    start: int  # where their blocks start in a share's body
    blocks: dict[int, bytes]  # per source index


@contextmanager
def _one_source_failure() -> Iterator[None]:
    """A source failing in a nursery comes out as itself (one at a time: the next try
    finds the next), not as trio's group; anything else stays as trio made it."""
    try:
        yield
    except BaseExceptionGroup as group:
        found = list(leaves(group))
        if not all(isinstance(e, _SourceFailed) for e in found):
            raise
        raise found[0] from group


def _sources(candidates: Iterable[tuple[int, str]], k: int) -> dict[int, str]:
    """k distinct share indexes and a friend for each, primaries first (decoding them is
    a copy, not arithmetic)."""
    chosen: dict[int, str] = {}
    for index, friend in sorted(candidates):
        if len(chosen) < k:
            chosen.setdefault(index, friend)
    return chosen


async def rebuild(
    stores: Mapping[str, ShareStore],
    descriptor: RecordDescriptor,
    candidates: Iterable[tuple[int, str]],
    targets: Mapping[int, str],
    workers: trio.CapacityLimiter,
    events: ev.EventSink,
    challenges: int,
) -> Rebuilt:
    """Send shares ``targets`` (index -> friend) rebuilt from k of the ``candidates``
    (index, friend). IntegrityError when fewer than k good sources are left; a target
    friend that fails is named in a FriendTrouble event and left out of ``sent``."""
    left = set(candidates)
    failed: set[str] = set()  # target friends that refused or went away
    while True:
        sources = _sources(left, descriptor.k)
        if len(sources) < descriptor.k:
            raise IntegrityError(
                f"Record {descriptor.record_id.hex()[:12]} has too few good shares."
            )
        try:
            return await _rebuild_from(
                stores, descriptor, sources, targets, failed, workers, events, challenges
            )
        except _SourceFailed as exc:
            if exc.away:  # none of its shares can be read now
                events(ev.FriendTrouble(exc.friend, exc.reason))
                left = {(i, f) for i, f in left if f != exc.friend}
            else:
                events(ev.ShareRejected(exc.friend, descriptor.record_id, exc.index))
                left.discard((exc.index, exc.friend))


async def _rebuild_from(
    stores: Mapping[str, ShareStore],
    d: RecordDescriptor,
    sources: Mapping[int, str],
    targets: Mapping[int, str],
    failed: set[str],
    workers: trio.CapacityLimiter,
    events: ev.EventSink,
    challenges: int,
) -> Rebuilt:
    size = erasure.share_size(d.length, d.k)
    body = size - erasure.HEADER_SIZE - erasure.TRAILER_SIZE
    offsets = {index: 0 for index, friend in targets.items() if friend not in failed}
    kept: set[int] = set()  # targets that hold the share already

    async def _read(index: int, offset: int, length: int, out: dict[int, bytes]) -> None:
        friend = sources[index]
        try:
            data = await stores[friend].get_range(ShareKey(d.record_id, index), offset, length)
        except PeerError as exc:  # missing there after all, or the friend went away
            raise _SourceFailed(index, friend, exc.message, away=True) from exc
        except (StorageError, IntegrityError) as exc:  # its disk, or its answer
            raise _SourceFailed(index, friend, exc.message) from exc
        if len(data) != length:
            raise _SourceFailed(index, friend, "returned a share shorter than the record needs")
        out[index] = data

    async def _ranges(offset: int, length: int) -> dict[int, bytes]:
        out: dict[int, bytes] = {}
        with _one_source_failure():
            async with trio.open_nursery() as nursery:
                for index in sources:
                    nursery.start_soon(_read, index, offset, length, out)
        return out

    async def _send(index: int, piece: bytes, last: bool) -> None:
        friend = targets[index]
        try:
            if not await stores[friend].put_part(
                ShareKey(d.record_id, index), offsets[index], size, last, piece
            ):
                kept.add(index)
        except (PeerError, StorageError, IntegrityError) as exc:
            failed.add(friend)
            events(ev.FriendTrouble(friend, exc.message))
            return
        offsets[index] += len(piece)

    async def _send_all(pieces: list[bytes], last: bool) -> None:
        async with trio.open_nursery() as nursery:
            for index in offsets:
                if index not in kept and targets[index] not in failed and pieces[index]:
                    nursery.start_soon(_send, index, pieces[index], last)

    heads = await _ranges(0, erasure.HEADER_SIZE)
    first = min(sources)
    try:
        block_size = erasure.block_size_of(heads[first])
        version = erasure.version_of(heads[first])
    except IntegrityError as exc:
        raise _SourceFailed(first, sources[first], exc.message) from exc
    coder = _Coder(d, sorted(sources), block_size, challenges, offsets, version)
    await trio.to_thread.run_sync(coder.hash_sources, heads, limiter=workers)
    layout = erasure.segment_layout(d.length, d.k, block_size)
    # The next batch is read while this one is coded and sent: two batches in memory.
    send_batches, receive_batches = trio.open_memory_channel[_Blocks](0)

    async def _read_ahead() -> None:
        async with send_batches:
            for at in range(0, len(layout), REBUILD_SEGMENTS):
                batch = layout[at : at + REBUILD_SEGMENTS]
                start, end = batch[0][0], batch[-1][0] + batch[-1][1]
                blocks = await _ranges(erasure.HEADER_SIZE + start, end - start)
                await send_batches.send(_Blocks(batch, start, blocks))
                del blocks

    broken = False
    with _one_source_failure():
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_read_ahead)
            async with receive_batches:
                async for got in receive_batches:
                    if broken:  # read on, hashing only, so the hashes say which source is bad
                        await trio.to_thread.run_sync(
                            coder.hash_sources, got.blocks, limiter=workers
                        )
                        continue
                    try:
                        pieces = await trio.to_thread.run_sync(
                            coder.segments, got.batch, got.blocks, got.start, limiter=workers
                        )
                    except IntegrityError:
                        broken = True
                        continue
                    del got
                    await _send_all(pieces, last=False)
                    del pieces
    tails = await _ranges(erasure.HEADER_SIZE + body, erasure.TRAILER_SIZE - 32)  # the length
    await trio.to_thread.run_sync(coder.hash_sources, tails, limiter=workers)
    bad = coder.bad_sources()
    if bad:
        raise _SourceFailed(bad[0], sources[bad[0]], "returned a damaged share")
    ends = None if broken else await trio.to_thread.run_sync(coder.finish, limiter=workers)
    if ends is None or not coder.rebuilt_right():
        raise IntegrityError(f"Record {d.record_id.hex()[:12]} did not rebuild as it was stored.")
    await _send_all(ends, last=True)
    sent = {i: targets[i] for i in offsets if targets[i] not in failed}
    return Rebuilt(sent, coder.challenges())
