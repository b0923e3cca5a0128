"""Large records, streamed: memory stays bounded whatever the file size.

Upload: the record is read, sealed and erasure-coded a batch of segments at a
time in a worker thread, while the previous batch goes out to the n friends
as ``put_part`` pieces (one batch ahead, no more). The friends reserve the
room of the largest possible share first, and check the whole share when the
last piece lands. A friend failing mid-way means starting the record again
without it: shares are placed before they exist. The friends that did not
fail keep their share indexes; a share they hold whole already is answered
"kept" and not sent again, a partial one starts over at offset 0.

Download: k shares are read in ranges, a batch of erasure segments at a
time, decoded, opened (each segment authenticated) and handed to a sink.
The seal vouches for what reaches the sink, so the shares are hashed only
when a segment fails to open, to name the friend whose share is damaged. A
bad or missing share means starting again with another holder.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import nacl.utils
import trio

from p2pbackup.core import erasure
from p2pbackup.core.refs import RecordDescriptor
from p2pbackup.core.seal import Kind, RecordOpener, Sealer
from p2pbackup.engine.failures import leaves
from p2pbackup.errors import IntegrityError, OtherVersionKept, PeerError, StorageError
from p2pbackup.storage.sharepool import PROVE_PERSON_v1
from p2pbackup.storage.store import ShareKey, ShareStore

BATCH_SEGMENTS = 2  # plaintext segments (1 MiB each) sealed and encoded per batch
FETCH_SEGMENTS = 16  # erasure segments fetched per range request (256 KiB per share each)


class FriendFailed(Exception):
    def __init__(self, friend: str, reason: str) -> None:
        super().__init__(reason)
        self.friend = friend
        self.reason = reason


class KeptInOtherVersion(FriendFailed):
    """Not the friend's fault: it keeps share ``index`` of this record already, in share
    format ``version``. The upload stops, so the record can be made again in that version
    while no other friend has a whole share of it yet."""

    def __init__(self, friend: str, index: int, version: int) -> None:
        super().__init__(friend, f"keeps share {index} in share format {version} already")
        self.index = index
        self.version = version


class FriendsFailed(Exception):
    """Friends that refused or went away during one streamed upload, each with its reason.
    One exception, not a nursery's group: the caller catches it with a plain ``except``."""

    def __init__(self, failures: Sequence[FriendFailed]) -> None:
        super().__init__("; ".join(f"{f.friend}: {f.reason}" for f in failures))
        self.failures = tuple(failures)


def _settle(group: BaseExceptionGroup) -> BaseException:
    """What an upload's nested nurseries should raise: the friends that failed, or an
    error of the record itself (its file changed, could not be read) as itself; a
    cancellation, or several unrelated errors, as the group trio made."""
    found = list(leaves(group))
    if not all(isinstance(e, Exception) for e in found):
        # Cancelled, KeyboardInterrupt: trio's to carry, without the friends that failed
        # meanwhile (a cancel scope takes its Cancelled out; they would be left to crash).
        _, rest = group.split(FriendFailed)
        assert rest is not None
        return rest
    others = [e for e in found if not isinstance(e, FriendFailed)]
    if not others:
        return FriendsFailed([e for e in found if isinstance(e, FriendFailed)])
    return others[0] if len(others) == 1 else group


@dataclass
class _Batch:
    pieces: list[bytes]  # per share index
    last: bool


class Producer:
    """Reads, seals and encodes; runs in a worker thread, one batch per call."""

    def __init__(
        self, data_key: bytes, kind: Kind, record_id: bytes, segments: Iterable[bytes],
        k: int, n: int, challenges: int, version: int | Sequence[int] = erasure.VERSION,
    ) -> None:  # fmt: skip
        self._sealer = Sealer(data_key, kind, record_id)
        self._encoder = erasure.ShareEncoder(record_id, k, n, version=version)
        self._segments: Iterator[bytes] = iter(segments)
        self._pending: bytes | None = next(self._segments, None)
        self._started = False
        self.n = n
        self.nonces = [[nacl.utils.random(16) for _ in range(challenges)] for _ in range(n)]
        self._provers = [
            [hashlib.blake2b(key=nonce, digest_size=32, person=PROVE_PERSON_v1) for nonce in row]
            for row in self.nonces
        ]

    def batch(self) -> _Batch:
        pieces: list[list[bytes]] = [[] for _ in range(self.n)]

        def _add(out: list[bytes]) -> None:
            for i, piece in enumerate(out):
                if piece:
                    pieces[i].append(piece)

        if not self._started:
            self._started = True
            _add(self._encoder.feed(self._sealer.header))
        last = False
        for _ in range(BATCH_SEGMENTS):
            segment = self._pending or b""
            self._pending = next(self._segments, None)
            last = self._pending is None
            _add(self._encoder.feed(self._sealer.seal_segment(segment, last)))
            if last:
                _add(self._encoder.finish())
                break
        joined = [b"".join(p) for p in pieces]
        for provers, piece in zip(self._provers, joined, strict=True):
            for prover in provers:
                prover.update(piece)
        return _Batch(joined, last)

    @property
    def descriptor(self) -> RecordDescriptor:
        return self._encoder.descriptor

    def challenges(self) -> list[list[tuple[bytes, bytes]]]:
        return [
            [(nonce, prover.digest()) for nonce, prover in zip(nonces, provers, strict=True)]
            for nonces, provers in zip(self.nonces, self._provers, strict=True)
        ]


async def upload_stream(
    stores: Mapping[str, ShareStore],
    record_id: bytes,
    placed: Mapping[int, str],
    reserve: int,
    producer: Producer,
    workers: trio.CapacityLimiter,
) -> None:
    """Send every share of the producer's record to its friend. FriendsFailed names the
    friends that refused or went away, or keep a share in another format version
    (KeptInOtherVersion); the others are stopped. An error reading the record's source
    comes out as itself."""
    offsets = dict.fromkeys(placed, 0)
    kept: set[int] = set()  # friends that already had the share
    rid = record_id
    send_batches, receive_batches = trio.open_memory_channel[_Batch](1)

    async def _produce() -> None:
        async with send_batches:
            while True:
                batch = await trio.to_thread.run_sync(producer.batch, limiter=workers)
                await send_batches.send(batch)
                if batch.last:
                    return

    async def _send(index: int, piece: bytes, last: bool) -> None:
        friend = placed[index]
        try:
            if not await stores[friend].put_part(
                ShareKey(rid, index), offsets[index], reserve, last, piece
            ):
                kept.add(index)
        except OtherVersionKept:
            version = await kept_version(stores[friend], ShareKey(rid, index))
            raise KeptInOtherVersion(friend, index, version) from None
        except (PeerError, StorageError, IntegrityError) as exc:
            raise FriendFailed(friend, exc.message) from exc
        offsets[index] += len(piece)

    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_produce)
            async with receive_batches:
                async for batch in receive_batches:
                    async with trio.open_nursery() as senders:
                        for index in placed:
                            if index not in kept:
                                senders.start_soon(_send, index, batch.pieces[index], batch.last)
    except BaseExceptionGroup as group:  # a failure comes wrapped once per nursery level
        settled = _settle(group)
        if settled is group:
            raise
        raise settled from group


async def kept_version(store: ShareStore, key: ShareKey) -> int:
    """The format version of the share a friend says it keeps in another version: its
    version byte. Believing it costs nothing: the owner computes the hash of its own
    share in that version, and a friend that lied holds a share that fails its checks."""
    try:
        version = (await store.get_range(key, 4, 1))[:1]
    except (PeerError, StorageError, IntegrityError) as exc:
        raise FriendFailed(store.name, exc.message) from exc
    if not version or version[0] not in erasure.VERSIONS:
        raise FriendFailed(store.name, "keeps a share of a format version it cannot name")
    return version[0]


async def fetch_stream(
    stores: Mapping[str, ShareStore],
    descriptor: RecordDescriptor,
    chosen: Mapping[int, str],
    data_key: bytes,
    kind: Kind | None,
    sink: Callable[[bytes], None],
    workers: trio.CapacityLimiter,
) -> None:
    """Decode the record from the k ``chosen`` shares (index -> friend) into ``sink``.
    FriendFailed names a friend whose share was missing or bad.

    The seal authenticates every segment (and their order and number), so the shares
    are not hashed while they decode and open: what reaches ``sink`` is the record.
    Only when a segment fails to open are the chosen shares read again and hashed, to
    name the friend whose share is damaged (IntegrityError if none is)."""
    d = descriptor
    indexes = sorted(chosen)
    layout = erasure.segment_layout(d.length, d.k, erasure.BLOCK_SIZE)
    decoder = erasure.SegmentDecoder(d, indexes)
    opener = RecordOpener(data_key, expected_record_id=d.record_id, expected_kind=kind)

    async def _read(index: int, offset: int, length: int, out: dict[int, bytes]) -> None:
        friend = chosen[index]
        try:
            data = await stores[friend].get_range(ShareKey(d.record_id, index), offset, length)
        except (PeerError, StorageError, IntegrityError) as exc:  # its disk, or its answer
            raise FriendFailed(friend, exc.message) from exc
        if len(data) != length:
            raise FriendFailed(friend, "returned a share shorter than the record needs")
        out[index] = data

    async def _ranges(offset: int, length: int) -> dict[int, bytes]:
        out: dict[int, bytes] = {}
        async with trio.open_nursery() as nursery:
            for index in indexes:
                nursery.start_soon(_read, index, offset, length, out)
        return out

    try:
        for first in range(0, len(layout), FETCH_SEGMENTS):
            batch = layout[first : first + FETCH_SEGMENTS]
            start = batch[0][0]
            end = batch[-1][0] + batch[-1][1]
            blocks = await _ranges(erasure.HEADER_SIZE + start, end - start)

            def _decode(batch=batch, blocks=blocks, start=start) -> None:
                for offset, length, _ in batch:
                    segment = decoder.decode(
                        [memoryview(blocks[i])[offset - start : offset - start + length]
                         for i in indexes]
                    )  # fmt: skip
                    for piece in opener.feed(segment):
                        sink(piece)

            await trio.to_thread.run_sync(_decode, limiter=workers)
            del blocks, _decode  # this batch is done with before the next is fetched
        opener.finish()
    except IntegrityError:
        await _name_damage(d, indexes, _ranges, workers, chosen)
        raise


async def _name_damage(
    d: RecordDescriptor,
    indexes: Sequence[int],
    ranges: Callable[[int, int], Awaitable[dict[int, bytes]]],
    workers: trio.CapacityLimiter,
    chosen: Mapping[int, str],
) -> None:
    """Read the chosen shares again, whole, hashing only: FriendFailed for each whose hash
    is not the descriptor's (in a group when several are). Returns when every one is as
    stored."""
    hashers = {i: erasure.ShareDigest() for i in indexes}
    hashed = erasure.share_size(d.length, d.k) - erasure.HASH_SIZE  # all but the hash itself
    step = FETCH_SEGMENTS * erasure.BLOCK_SIZE
    for offset in range(0, hashed, step):
        out = await ranges(offset, min(step, hashed - offset))

        def _hash(out=out) -> None:
            for index in indexes:
                hashers[index].update(out[index])

        await trio.to_thread.run_sync(_hash, limiter=workers)
    damaged = [
        FriendFailed(chosen[index], "returned a damaged share")
        for index in indexes
        if hashers[index].digest() != d.share_hashes[index]
    ]
    if len(damaged) > 1:
        raise ExceptionGroup("several shares are damaged", damaged)
    if damaged:
        raise damaged[0]
