"""Fetches records back from friends: any k good shares, then decode and open.

It does not need the local catalog: one ``list`` per friend says who holds
which share, which is all a new laptop restored from the phrase knows. Each
share is checked against the hash in the (authenticated) descriptor before
decoding; a bad or missing share means asking the next holder.
"""

from __future__ import annotations

from collections import OrderedDict, defaultdict
from collections.abc import Callable, Iterable, Mapping

import trio

from p2pbackup.core import erasure
from p2pbackup.core.keys import OwnerKeys
from p2pbackup.core.refs import RecordDescriptor
from p2pbackup.core.seal import Kind, open_record
from p2pbackup.engine import streaming
from p2pbackup.engine.events import EventSink, FriendTrouble, ShareRejected
from p2pbackup.engine.failures import leaves
from p2pbackup.errors import IntegrityError, PeerError
from p2pbackup.storage.store import ShareKey, ShareStore


async def list_holders(
    stores: Mapping[str, ShareStore], events: EventSink
) -> tuple[dict[ShareKey, list[str]], list[str]]:
    """Who holds which share (one ``list`` per friend, all at once), and who did not answer."""
    holders: dict[ShareKey, list[str]] = defaultdict(list)
    unreachable: list[str] = []

    async def _list(name: str, store: ShareStore) -> None:
        try:
            keys = await store.list()
        except (PeerError, IntegrityError) as exc:  # away, or its list does not parse
            unreachable.append(name)
            events(FriendTrouble(name, exc.message))
            return
        for key in keys:
            holders[key].append(name)

    async with trio.open_nursery() as nursery:
        for name, store in stores.items():
            nursery.start_soon(_list, name, store)
    return holders, unreachable


class Fetcher:
    def __init__(
        self,
        keys: OwnerKeys,
        stores: Mapping[str, ShareStore],
        events: EventSink,
        workers: trio.CapacityLimiter,
        away: Iterable[str] = (),
    ) -> None:
        self._keys = keys
        self._stores = stores
        self._events = events
        self._workers = workers
        self._holders: dict[ShareKey, list[str]] | None = None
        # Friends whose shares could not be asked for (offline from the start, or failing
        # to answer since): too few shares with any of them away is their absence, a
        # PeerError, not damage.
        self._away = dict.fromkeys(away)

    async def _index(self) -> dict[ShareKey, list[str]]:
        if self._holders is None:
            self._holders, unreachable = await list_holders(self._stores, self._events)
            self._went_away(*unreachable)
        return self._holders

    def _went_away(self, *keys: str) -> None:
        for key in keys:
            self._away[getattr(self._stores.get(key), "name", key)] = None

    def _too_few(self, descriptor: RecordDescriptor, found: int | None) -> Exception:
        """Why a record cannot be rebuilt: friends away (PeerError, exit 4) or shares that
        are missing or bad on friends that answered (IntegrityError, exit 3)."""
        rid, k = descriptor.record_id.hex()[:12], descriptor.k
        good = f"only {found} good shares of the {k} needed are" if found is not None else (
            f"fewer than {k} good shares are")
        if self._away:
            names = ", ".join(sorted(self._away))
            return PeerError(
                f"Record {rid} cannot be rebuilt now: {good} reachable, and friends who may "
                f"hold the rest are away ({names}). Bring them online and try again."
            )
        return IntegrityError(
            f"Record {rid} cannot be rebuilt: {good} left on friends, who all answered."
        )

    async def _good_share(self, descriptor: RecordDescriptor, index: int) -> bytes | None:
        key = ShareKey(descriptor.record_id, index)
        for name in (await self._index()).get(key, ()):
            try:
                share = await self._stores[name].get(key)
                erasure.verify_share(descriptor, index, share)
                return share
            except PeerError as exc:
                self._went_away(name)
                self._events(FriendTrouble(name, exc.message))
            except IntegrityError:
                self._events(ShareRejected(name, descriptor.record_id, index))
        return None

    async def fetch(self, descriptor: RecordDescriptor, kind: Kind | None = None) -> bytes:
        """The record's plaintext; PeerError when too few good shares are reachable with
        friends away, IntegrityError when too few exist on friends who answered."""
        shares: dict[int, bytes] = {}
        # Primary shares first: decoding them is a copy, not arithmetic.
        candidates = iter(range(descriptor.n))
        while len(shares) < descriptor.k:
            batch = [i for _, i in zip(range(descriptor.k - len(shares)), candidates, strict=False)]
            if not batch:
                break
            results: dict[int, bytes | None] = {}

            async def _one(index: int, results=results) -> None:
                results[index] = await self._good_share(descriptor, index)

            async with trio.open_nursery() as nursery:
                for index in batch:
                    nursery.start_soon(_one, index)
            shares.update({i: s for i, s in results.items() if s is not None})
        if len(shares) < descriptor.k:
            raise self._too_few(descriptor, len(shares))
        return await trio.to_thread.run_sync(
            self._decode_and_open, descriptor, shares, kind, limiter=self._workers
        )

    async def fetch_into(
        self,
        descriptor: RecordDescriptor,
        begin: Callable[[], Callable[[bytes], None]],
        kind: Kind | None = None,
    ) -> None:
        """Stream the record's plaintext into the writer ``begin()`` returns; ``begin`` is
        called again (it must start over) when a share turns out bad mid-way."""
        rid, excluded = descriptor.record_id, set[tuple[int, str]]()
        while True:
            holders = await self._index()
            chosen: dict[int, str] = {}
            for index in range(descriptor.n):
                for name in holders.get(ShareKey(rid, index), ()):
                    if (index, name) not in excluded and len(chosen) < descriptor.k:
                        chosen[index] = name
                        break
            if len(chosen) < descriptor.k:
                raise self._too_few(descriptor, None)
            try:
                await streaming.fetch_stream(
                    self._stores, descriptor, chosen, self._keys.data_key, kind, begin(),
                    self._workers,
                )  # fmt: skip
                return
            except* streaming.FriendFailed as group:
                for failure in leaves(group):  # nested nurseries wrap it more than once
                    if isinstance(failure.__cause__, PeerError):  # away, not a bad share
                        self._went_away(failure.friend)
                    self._events(FriendTrouble(failure.friend, failure.reason))
                    excluded.update((i, f) for i, f in chosen.items() if f == failure.friend)

    def _decode_and_open(
        self, descriptor: RecordDescriptor, shares: dict[int, bytes], kind: Kind | None
    ) -> bytes:
        sealed = erasure.decode_verified(descriptor, shares)  # each checked on arrival
        return open_record(
            self._keys.data_key, sealed, expected_record_id=descriptor.record_id, expected_kind=kind
        ).plaintext


class RecordCache:
    """Records fetched lately, by id, up to ``limit`` bytes of plaintext (at least the last
    one): a pack serves many files, so a restore or a repack asks for it many times."""

    def __init__(self, fetcher: Fetcher, limit: int) -> None:
        self._fetcher = fetcher
        self._limit = limit
        self._records: OrderedDict[bytes, bytes] = OrderedDict()
        self._bytes = 0

    async def get(self, descriptor: RecordDescriptor) -> bytes:
        rid = descriptor.record_id
        if rid in self._records:
            self._records.move_to_end(rid)
            return self._records[rid]
        # Packs hold full texts and deltas alike, so the kind is checked by the chain, not here.
        plaintext = await self._fetcher.fetch(descriptor)
        self._records[rid] = plaintext
        self._bytes += len(plaintext)
        while self._bytes > self._limit and len(self._records) > 1:
            _, old = self._records.popitem(last=False)
            self._bytes -= len(old)
        return plaintext
