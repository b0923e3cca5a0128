"""My friends' nodes as share stores, for the length of one job.

A daemon lends the stores it keeps connected (daemon/friends.py). A command
run without one connects here (``connected``): each friend is located
(remembered addresses first, then mDNS and the rendezvous point), connected,
and asked ``stat``. Either way, who answers is online, with how much room my
shares still have there. Friends are keyed by their owner id in hex, which
never changes; names are for people and may repeat.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field, replace

import trio

from p2pbackup.core import head as heads
from p2pbackup.daemon.node import Node
from p2pbackup.errors import P2PBackupError
from p2pbackup.net import locate
from p2pbackup.net.client import RemoteShareStore, remote_store
from p2pbackup.storage.catalog import Friend
from p2pbackup.storage.store import Usage

log = logging.getLogger(__name__)

STAT_TIMEOUT = 10.0
LAN_WAIT = 2.0  # seconds to let mDNS hear friends before giving up on them


@dataclass
class Grid:
    friends: dict[str, Friend] = field(default_factory=dict)  # key -> friend
    stores: dict[str, RemoteShareStore] = field(default_factory=dict)  # every friend
    usage: dict[str, Usage] = field(default_factory=dict)  # only friends that answered

    @property
    def online(self) -> dict[str, RemoteShareStore]:
        return {key: self.stores[key] for key in self.usage}

    def name(self, key: str) -> str:
        friend = self.friends.get(key)
        return friend.name if friend else key[:12]

    def room(self) -> dict[str, int]:
        return {key: usage.free for key, usage in self.usage.items()}


def friend_key(friend: Friend) -> str:
    return friend.owner_id.hex()


def head_friends(node: Node) -> frozenset[heads.FriendEntry]:
    """The friend list as the head carries it, so a recovered device finds everyone, and
    the friends I removed as tombstones, so no device adds them back. Each entry is dated
    when the friendship began or ended, not when it is published: a device that has not
    heard of an unfriend yet publishes an older entry, which the tombstone outranks."""
    live = (
        heads.FriendEntry(f.owner_id, f.name[:64], f.addresses[:16], f.node_ids[:16],
                          f.added_at, False)
        for f in node.catalog.friends()
    )  # fmt: skip
    gone = (
        heads.FriendEntry(owner_id, name[:64], (), (), removed_at, True)
        for owner_id, name, removed_at in node.catalog.removed_friends()
    )
    return frozenset((*live, *gone))


def adopt_head_friends(node: Node, body: heads.HeadBody) -> int:
    """Friends listed in the head that this device does not know yet (a recovered device)."""
    added = 0
    for entry in body.friends:
        if entry.removed or entry.owner_id == node.keys.owner_id:
            continue
        removed_here = node.catalog.removed_at(entry.owner_id)
        if removed_here is not None and removed_here >= entry.updated_at:
            continue  # unfriended on this device; the head has not heard yet
        if node.catalog.friend(entry.owner_id) is None and entry.node_ids:
            node.catalog.add_known_friend(
                entry.owner_id, entry.name, list(entry.node_ids), list(entry.addresses),
                entry.updated_at,
            )  # fmt: skip
            added += 1
    return added


def drop_removed_friends(node: Node, body: heads.HeadBody) -> list[bytes]:
    """Friends this device still has that another device unfriended since: they go here
    too, and so does what this node kept for them. Their owner ids."""
    dropped = []
    for entry in body.friends:
        friend = node.catalog.friend(entry.owner_id)
        if entry.removed and friend is not None and friend.added_at <= entry.updated_at:
            node.catalog.remove_friend(entry.owner_id, entry.updated_at)
            freed = node.pool.drop_owner(entry.owner_id)
            log.info("%s was unfriended on another device: %d bytes of theirs freed",
                     friend.name, freed)  # fmt: skip
            dropped.append(entry.owner_id)
    return dropped


async def friends_from_lan(node: Node) -> int:
    """A device that knows no friend yet (recovered from the phrase) asks every node heard
    on the LAN for its head: a friend's node lets any device of a paired owner in. Friends
    listed in the first head that opens are adopted; how many."""
    if node.lan is None or node.catalog.friends():
        return 0
    with trio.move_on_after(LAN_WAIT):
        await node.lan.wait_until(bool)  # any node heard
    for peer in node.lan.peers():
        async with remote_store(
            node.host, peer, "a node on this network", node.certificate, node.keys.signing_key
        ) as store:
            try:
                with trio.fail_after(STAT_TIMEOUT):
                    data = await store.get_head()
                if data is None:
                    continue
                _, body = heads.open_head(data, node.keys.owner_id, node.keys.head_key)
            except (P2PBackupError, trio.TooSlowError) as exc:
                log.info("LAN node %s has nothing for us: %s", peer.peer_id, exc)
                continue
        added = adopt_head_friends(node, body)
        if added:
            log.info("found %d friends through a node on this network", added)
            return added
    return 0


@asynccontextmanager
async def connected(node: Node, timeout: float = STAT_TIMEOUT) -> AsyncIterator[Grid]:
    """Every friend connected and asked ``stat``, for a command run without a daemon.

    All are dialled at once where they were last seen (and where mDNS heard them already).
    Only the friends that did not answer there wait for mDNS to hear them (LAN_WAIT) and
    are looked up at the rendezvous point (whose relay is tried too), then dialled again
    if that told something new."""
    grid = Grid()
    for friend in node.catalog.friends():
        grid.friends[friend_key(friend)] = friend
    reach = node.reach()
    async with AsyncExitStack() as stack:
        dialled: dict[str, locate.Peer] = {}
        remembered = replace(reach, point=None)  # no rendezvous lookup, no relay: not yet
        await _connect(node, grid, stack, remembered, list(grid.friends), timeout, dialled)
        missing = [key for key in grid.friends if key not in grid.usage]
        if missing and (reach.lan is not None or reach.point is not None):
            if reach.lan is not None:
                wanted = {n for key in missing for n in grid.friends[key].node_ids}
                with trio.move_on_after(LAN_WAIT):
                    await reach.lan.wait_until(lambda heard: wanted <= _ids(heard))
            await _connect(node, grid, stack, reach, missing, timeout, dialled)
        yield grid


async def _connect(
    node: Node, grid: Grid, stack: AsyncExitStack, reach: locate.Reach, keys: list[str],
    timeout: float, dialled: dict[str, locate.Peer],
) -> None:  # fmt: skip
    """Locate, connect and ``stat`` the friends ``keys`` at once; each is dialled again
    only where it was not (``dialled``), or when the relay is new."""
    located: dict[str, locate.Peer] = {}

    async def _locate(key: str) -> None:
        peer = await locate.locate(reach, grid.friends[key], node.catalog.set_addresses)
        if peer is not None and (peer != dialled.get(key) or reach.point is not None):
            located[key] = dialled[key] = peer

    async def _stat(key: str, store: RemoteShareStore) -> None:
        with trio.move_on_after(timeout):
            try:
                grid.usage[key] = await store.stat()
                node.catalog.saw(grid.friends[key].owner_id)
            except P2PBackupError as exc:
                log.info("friend %s is not available: %s", store.name, exc.message)

    async with trio.open_nursery() as nursery:
        for key in keys:
            nursery.start_soon(_locate, key)
    # Entered in the caller's task: each store's nursery must close in the task that opened it.
    for key, peer in located.items():
        grid.stores[key] = await stack.enter_async_context(
            locate.store_at(reach, peer, grid.friends[key].name)
        )
    async with trio.open_nursery() as nursery:
        for key in located:
            nursery.start_soon(_stat, key, grid.stores[key])


def _ids(peers) -> set[str]:
    return {str(p.peer_id) for p in peers}
