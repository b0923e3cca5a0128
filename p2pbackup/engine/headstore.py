"""Reading and publishing the owner's head on every friend.

Readers ask every friend and merge every valid head they get (merging is
commutative and idempotent, so a friend that missed an update, or two
devices that published at once, lose nothing); the sequence number is the
highest seen. Publishing is compare-and-swap on each friend: a friend that
already holds a higher number means another device won the race, so we read
again, merge and retry.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Mapping, Sequence

import nacl.utils
import trio

from p2pbackup.core import head as heads
from p2pbackup.core.keys import OwnerKeys
from p2pbackup.core.manifest import Entry, Manifest
from p2pbackup.core.seal import Kind, record_id
from p2pbackup.engine.events import EventSink, HeadRolledBack
from p2pbackup.engine.state import BackupState
from p2pbackup.engine.uploader import Uploader, split_segments
from p2pbackup.errors import IntegrityError, PeerError
from p2pbackup.storage.store import ShareStore

EMPTY = heads.HeadBody(frozenset(), frozenset(), frozenset(), None)
PUBLISH_TRIES = 3


async def read_heads(
    keys: OwnerKeys, stores: Mapping[str, ShareStore]
) -> dict[str, tuple[int, heads.HeadBody] | None]:
    """Each friend's valid head (None: it holds none); friends that did not answer, or
    hold a forged head, are left out."""
    found: dict[str, tuple[int, heads.HeadBody] | None] = {}

    async def _one(name: str, store: ShareStore) -> None:
        try:
            data = await store.get_head()
            found[name] = (
                None if data is None else heads.open_head(data, keys.owner_id, keys.head_key)
            )
        except (PeerError, IntegrityError):
            pass  # an absent friend, or one holding a forged head: the others decide

    async with trio.open_nursery() as nursery:
        for name, store in stores.items():
            nursery.start_soon(_one, name, store)
    return found


def merged(found: Mapping[str, tuple[int, heads.HeadBody] | None]) -> tuple[int, heads.HeadBody]:
    seq, body = 0, EMPTY
    for one in found.values():
        if one is not None:
            seq, body = max(seq, one[0]), heads.merge(body, one[1])
    return seq, body


async def read_head(
    keys: OwnerKeys, stores: Mapping[str, ShareStore]
) -> tuple[int, heads.HeadBody]:
    """The merged head of every friend that answered, and the highest sequence number."""
    return merged(await read_heads(keys, stores))


async def check_heads(
    keys: OwnerKeys, stores: Mapping[str, ShareStore], state: BackupState, events: EventSink
) -> dict[str, tuple[int, int]]:
    """Friends holding an older head than they held or accepted before, as {friend: (seen,
    known)}, each told as a HeadRolledBack event. A friend only ever replaces a head by a
    higher one, so a lower one means its pool went back in time (a restored copy, a wiped
    disk: seen 0). If this device knows a newer head than some rolled-back friend holds,
    it publishes it again (merged with what the friends hold, at a higher number), so a
    recovered device reading any friend sees every snapshot again."""
    found = await read_heads(keys, stores)
    rolled: dict[str, tuple[int, int]] = {}
    for name, one in sorted(found.items()):
        seen, known = (one[0] if one else 0), state.friend_heads.get(name, 0)
        if seen < known:
            rolled[name] = (seen, known)
            events(HeadRolledBack(name, seen, known))
    state.saw_heads({name: one[0] for name, one in found.items() if one is not None})
    if rolled:
        state.rolled_back(rolled)
    if rolled and state.head is not None and state.head_seq > min(s for s, _ in rolled.values()):
        with contextlib.suppress(PeerError):  # friends away or racing: the next job tries again
            await publish(keys, stores, state, EMPTY)
    return rolled


async def _holds_as_new(keys: OwnerKeys, store: ShareStore, seq: int) -> bool:
    """Whether a friend that refused head ``seq`` holds one as new: another device won the
    race. A friend whose own copy no longer verifies (a bit flipped on its disk), or that
    lies, refuses every head: retrying cannot help, so it is passed over like one away."""
    try:
        data = await store.get_head()
        return data is not None and heads.open_head(data, keys.owner_id, keys.head_key)[0] >= seq
    except (PeerError, IntegrityError):
        return False


async def publish(
    keys: OwnerKeys,
    stores: Mapping[str, ShareStore],
    state: BackupState,
    change: heads.HeadBody,
    manifest: Manifest | None = None,
    encoded: bytes = b"",
) -> int:
    """Merge ``change`` into the friends' head and store it on every friend; the new seq."""
    for _ in range(PUBLISH_TRIES):
        seq, body = await read_head(keys, stores)
        body = heads.merge(body, change)
        if state.head is not None:
            body = heads.merge(body, state.head)
        seq = max(seq, state.head_seq) + 1
        data = heads.seal_head(keys.signing_key, keys.head_key, seq, body)
        stored, raced = 0, False
        accepted: dict[str, int] = {}  # remembered: a lower head there later is a rollback

        async def _put(name: str, store: ShareStore, data=data, seq=seq, accepted=accepted) -> None:
            nonlocal stored, raced
            try:
                await store.put_head(data)
                stored += 1
                accepted[name] = seq
            except IntegrityError:  # refused: a race only if another device's head is there
                if await _holds_as_new(keys, store, seq):
                    raced = True
            except PeerError:
                pass

        async with trio.open_nursery() as nursery:
            for name, store in stores.items():
                nursery.start_soon(_put, name, store)
        state.saw_heads(accepted)
        if stored and not raced:
            state.published(seq, body, manifest, encoded)
            return seq
        if not stored and not raced:
            raise PeerError("No friend could be reached to publish the backup.")
    raise PeerError("Another device kept publishing at the same time; try again.")


async def publish_snapshot(
    keys: OwnerKeys,
    stores: Mapping[str, ShareStore],
    state: BackupState,
    uploader: Uploader,
    entries: Sequence[Entry],
    *,
    roots: tuple[str, ...],
    device: str,
    friends: frozenset[heads.FriendEntry] = frozenset(),
) -> Manifest:
    """Store the manifest (after every record it needs), then publish it in the head."""
    parents = (state.last_snapshot,) if state.last_snapshot else ()
    build = functools.partial(
        Manifest.build,
        snapshot_id=nacl.utils.random(16),
        generation=0,
        created_at_ns=time.time_ns(),
        device=device,
        parents=parents,
        roots=roots,
        entries=entries,
        descriptors={rid: rec.descriptor for rid, rec in state.records.items()},
    )
    # A second or more for a large tree: off the event loop, which serves friends too.
    manifest = await trio.to_thread.run_sync(build)
    data = await trio.to_thread.run_sync(manifest.to_bytes)
    rid = record_id(keys.record_id_key, Kind.MANIFEST, data)
    descriptor = await uploader.store(Kind.MANIFEST, rid, split_segments(data))
    ref = heads.SnapshotRef(
        manifest.snapshot_id, 0, manifest.created_at_ns, descriptor, manifest.device,
        heads.folder_set_id(manifest.roots),
    )  # fmt: skip
    change = heads.HeadBody(frozenset({ref}), frozenset(), friends, None)
    await publish(keys, stores, state, change, manifest, data)
    return manifest
