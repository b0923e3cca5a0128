"""Jobs about friends that need the node but not the friends connected:
invite, join, and the friend list with what each one stores."""

from __future__ import annotations

import functools
import logging
from datetime import datetime
from typing import Any

import trio

from p2pbackup.core.pairing import FriendCard, InviteCode, parse_code
from p2pbackup.daemon.grid import connected
from p2pbackup.daemon.identity import public_addresses
from p2pbackup.daemon.node import Node
from p2pbackup.daemon.params import check as check_params
from p2pbackup.daemon.settings import default_offer
from p2pbackup.daemon.times import iso_time
from p2pbackup.engine import events as ev
from p2pbackup.errors import ConfigError, InviteNotHere, P2PBackupError, PairingError, PeerError
from p2pbackup.net import discovery, invite, locate

log = logging.getLogger(__name__)

LAN_WAIT = 8.0  # seconds to listen for nodes on the local network
FOUND_DIAL_TIMEOUT = 5.0  # a node found by the nameplate that is there answers in far less


def _paired(card: FriendCard, offer: int) -> dict:
    return {
        "paired": True,
        "name": card.name,
        "owner_id": card.owner_id.hex(),
        "they_give": card.offered_quota,
        "i_give": offer,
    }


async def invite_friend(
    node: Node, events: ev.EventSink, offer: int | None, minutes: float
) -> dict:
    offer = default_offer(node.profile) if offer is None else offer
    code = node.invites.create(node.card(offer), validity=minutes * 60)
    point = node.rendezvous()
    namespace = discovery.invite_namespace(code.nameplate)
    if point is not None:  # so a friend elsewhere finds us with the code alone
        await discovery.register(node.host, point, namespace)
        await _reachable_through(node, point)
    addresses = tuple(public_addresses(node.profile, node.peer_id))
    point_address = node.profile.settings().get("rendezvous", "") if point else ""
    events(ev.InviteReady(str(code), addresses, point_address))
    try:
        card = await node.invites.wait(code)
    finally:
        if point is not None:
            await discovery.unregister(node.host, point, namespace)
    node.remember_friend(card, offer)
    return _paired(card, offer)


async def join_friend(
    node: Node, events: ev.EventSink, code: str, offer: int | None, peer: str | None = None
) -> dict:
    offer = default_offer(node.profile) if offer is None else offer
    parsed = parse_code(code)
    if peer:  # the user named the friend's node: its errors are the friend's
        where = discovery.rendezvous_peer(peer, flag="--peer")
        card = await invite.join(node.host, where, parsed, node.card(offer),
                                 dial=functools.partial(locate.dial, node.reach()))  # fmt: skip
    else:
        card = await _join_any(node, parsed, offer)
    node.remember_friend(card, offer)
    return _paired(card, offer)


async def _reachable_through(node: Node, point: locate.Peer) -> None:
    """Hold a relay slot at the point while the invite waits, so a joiner behind another
    NAT reaches us through it (a daemon holds one already: this refreshes it). Without
    one a joiner on another network may not reach us: say so, and go on."""
    if node.relay is None:
        return
    try:
        await node.relay.reserve(point)
    except P2PBackupError as exc:
        log.warning("invite: no relay slot at the rendezvous point, so a friend behind "
                    "another NAT may not reach this node: %s", exc.message)  # fmt: skip


class _Tries:
    """What each node found by the nameplate said, for one error if none paired."""

    def __init__(self, where: str) -> None:
        self.where = where
        self.not_here = 0
        self.unreachable = 0
        self.refused: list[PairingError] = []

    def failure(self) -> P2PBackupError:
        if self.refused:  # a node holding that nameplate ran the PAKE: the code is spent
            return self.refused[0]
        if self.not_here:
            away = f", and {self.unreachable} could not be reached" if self.unreachable else ""
            return InviteNotHere(
                f"No node holding that invite code answered: {self.not_here} node(s) "
                f"{self.where} hold no invite by that number{away}. Check the code, and that "
                "your friend's invite is still waiting (a code lasts 10 minutes unless they "
                "chose otherwise), or give their address with --peer."
            )
        return PeerError(
            f"Your friend's node cannot be reached: none of the {self.unreachable} node(s) "
            f"{self.where} answered. Check that your friend's node still runs, or give its "
            "address with --peer."
        )


async def _try(node: Node, candidate: locate.Peer, code: InviteCode, offer: int, tries: _Tries):
    """The friend's card if ``candidate`` holds the code and it matches; None otherwise.

    Any node may answer, strangers included: each failure is counted, never shown
    as "your friend's node", and the next node is tried.
    """
    try:
        return await invite.join(
            node.host, candidate, code, node.card(offer), dial_timeout=FOUND_DIAL_TIMEOUT,
            dial=functools.partial(locate.dial, node.reach()),
        )  # fmt: skip
    except InviteNotHere:
        tries.not_here += 1  # nothing used up there: not the inviter
    except PeerError as exc:
        tries.unreachable += 1
        log.info("join: node %s did not answer: %s", candidate.peer_id, exc.message)
        if node.lan is not None:  # gone: the next join does not dial it again
            node.lan.forget(candidate.peer_id)
            log.info("forgot node %s, heard on the local network", candidate.peer_id)
    except PairingError as exc:
        tries.refused.append(exc)
    return None


async def _join_any(node: Node, code: InviteCode, offer: int) -> FriendCard:
    """Pair with whichever node holds ``code``: those the rendezvous point lists for its
    nameplate, or every node heard on this network (as they are heard, for LAN_WAIT)."""
    point = node.rendezvous()
    if point is not None:
        found = await discovery.discover(
            node.host, point, discovery.invite_namespace(code.nameplate)
        )
        if not found:
            raise InviteNotHere(
                "No node with that invite code is registered at the rendezvous point."
            )
        tries = _Tries("listed by the rendezvous point")
        for candidate in found:
            if card := await _try(node, candidate, code, offer, tries):
                return card
        raise tries.failure()
    lan = node.lan
    if lan is None:
        raise ConfigError(
            "Give your friend's address with --peer (their 'p2pbackup id' prints it), or a "
            "rendezvous point with --rendezvous."
        )
    tries, tried = _Tries("heard on this network"), set()
    listen_until = trio.current_time() + LAN_WAIT  # bounds the listening, not a pairing
    while True:
        heard = []
        with trio.move_on_at(listen_until):
            heard = await lan.wait_until(lambda peers: any(p.peer_id not in tried for p in peers))
        fresh = [p for p in heard if p.peer_id not in tried]
        if not fresh:
            break
        for candidate in fresh:
            tried.add(candidate.peer_id)
            if card := await _try(node, candidate, code, offer, tries):
                return card
    if not tried:
        raise PeerError(
            "No p2pbackup node was heard on this network. Check that your friend's invite is "
            "still waiting, or give their address with --peer."
        )
    raise tries.failure()


async def list_friends(node: Node, events: ev.EventSink) -> list[dict]:
    if node.friends is not None:  # the daemon keeps them connected: nobody is dialled
        remote = node.friends.usage()
        paths = {bytes.fromhex(p["owner_id"]): p["path"] for p in node.friends.presence()}
    else:
        async with connected(node) as grid:
            remote = {friend.owner_id: grid.usage.get(key) for key, friend in grid.friends.items()}
            paths = {grid.friends[key].owner_id: locate.path_of(node.reach(), store.peer_id)
                     for key, store in grid.online.items()}  # fmt: skip
    rows = []
    for f in node.catalog.friends():
        usage = remote.get(f.owner_id)
        path = paths.get(f.owner_id) if usage is not None else None
        rows.append(
            {
                "path": path,  # "direct", "relay" or None (unreachable)
                "reached": reached_text(node, path, node.catalog.last_seen(f.owner_id))
                if usage is None or path else "online",
                "name": f.name,
                "owner_id": f.owner_id.hex(),
                "node_ids": list(f.node_ids),
                "addresses": list(f.addresses),
                "online": usage is not None,
                "last_seen": iso_time(node.catalog.last_seen(f.owner_id)),  # None: never answered
                "i_store_for_them": node.pool.used(f.owner_id),
                "i_give": f.i_give,
                "they_store_for_me": usage.used if usage else None,
                "they_give": usage.quota if usage else f.they_give,
            }
        )
    return rows


def reached_text(node: Node, path: str | None, last_seen: float | None) -> str:
    """How a friend is reached, for people: "direct", "through <relay>", or
    "unreachable since <when>"."""
    if path == "direct":
        return "direct"
    if path == "relay":
        point = node.rendezvous()
        owner = next((f.name for f in node.catalog.friends()
                      if point is not None and locate.peer_id_of(point) in f.node_ids), None)
        return f"through {owner}'s relay" if owner else "through the rendezvous point's relay"
    if last_seen is None:
        return "unreachable (never seen online)"
    when = datetime.fromtimestamp(last_seen).astimezone().isoformat(timespec="minutes")
    return f"unreachable since {when}"


NODE_JOBS = {"invite": invite_friend, "join": join_friend, "friends": list_friends}
# Node jobs whose node others must hear on the LAN: the joiner finds the inviter by mDNS.
HEARD_ON_LAN = frozenset({"invite"})


async def run_node_job(node: Node, name: str, params: dict, events: ev.EventSink) -> Any:
    """Run the node job ``name`` with JSON parameters (from the CLI or the control socket)."""
    check_params(name, NODE_JOBS[name], node, events, **params)
    return await NODE_JOBS[name](node, events, **params)
