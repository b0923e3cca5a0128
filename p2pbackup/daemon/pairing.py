"""Jobs about friends that need the node but not the friends connected:
invite, join, and the friend list with what each one stores."""

from __future__ import annotations

from typing import Any

import trio

from p2pbackup.core.pairing import FriendCard, parse_code
from p2pbackup.daemon.node import Node, probe_friends, public_addresses
from p2pbackup.engine import events as ev
from p2pbackup.errors import ConfigError, PairingError, PeerError
from p2pbackup.net import discovery, invite

LAN_WAIT = 8.0  # seconds to listen for nodes on the local network


def _paired(card: FriendCard, offer: int) -> dict:
    return {
        "paired": True,
        "name": card.name,
        "owner_id": card.owner_id.hex(),
        "they_give": card.offered_quota,
        "i_give": offer,
    }


async def invite_friend(node: Node, events: ev.EventSink, offer: int, minutes: float) -> dict:
    code = node.invites.create(node.card(offer), validity=minutes * 60)
    point = node.rendezvous()
    namespace = discovery.invite_namespace(code.nameplate)
    if point is not None:  # so a friend elsewhere finds us with the code alone
        await discovery.register(node.host, point, namespace)
    addresses = tuple(public_addresses(node.profile, node.host.get_id().to_base58()))
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
    node: Node, events: ev.EventSink, code: str, offer: int, peer: str | None = None
) -> dict:
    parsed = parse_code(code)
    candidates = (
        [discovery.rendezvous_peer(peer, flag="--peer")]
        if peer
        else await _inviters(node, parsed.nameplate)
    )
    for candidate in candidates:
        try:
            card = await invite.join(node.host, candidate, parsed, node.card(offer))
        except PairingError as exc:
            if "unknown here" in exc.message and candidate is not candidates[-1]:
                continue  # another node with a pending invite: not ours
            raise
        node.remember_friend(card, offer)
        return _paired(card, offer)
    raise PeerError("No node with that invite code was found at the rendezvous point.")


async def _inviters(node: Node, nameplate: int) -> list:
    point = node.rendezvous()
    if point is not None:
        found = await discovery.discover(node.host, point, discovery.invite_namespace(nameplate))
        if not found:
            raise PeerError("No node with that invite code is registered at the rendezvous point.")
        return found
    if node.lan is None:
        raise ConfigError(
            "Give your friend's address with --peer (their 'p2pbackup id' prints it), or a "
            "rendezvous point with --rendezvous."
        )
    with trio.move_on_after(LAN_WAIT):
        while not node.lan.peers():
            await trio.sleep(0.1)
    if not node.lan.peers():
        raise PeerError(
            "No p2pbackup node was heard on this network. Check that your friend's invite is "
            "still waiting, or give their address with --peer."
        )
    return node.lan.peers()


async def list_friends(node: Node, events: ev.EventSink) -> list[dict]:
    remote = await probe_friends(node)
    rows = []
    for f in node.catalog.friends():
        usage = remote.get(f.owner_id)
        rows.append(
            {
                "name": f.name,
                "owner_id": f.owner_id.hex(),
                "node_ids": list(f.node_ids),
                "addresses": list(f.addresses),
                "online": usage is not None,
                "i_store_for_them": node.pool.used(f.owner_id),
                "i_give": f.i_give,
                "they_store_for_me": usage.used if usage else None,
                "they_give": usage.quota if usage else f.they_give,
            }
        )
    return rows


NODE_JOBS = {"invite": invite_friend, "join": join_friend, "friends": list_friends}


async def run_node_job(node: Node, name: str, params: dict, events: ev.EventSink) -> Any:
    """Run the node job ``name`` with JSON parameters (from the CLI or the control socket)."""
    try:
        return await NODE_JOBS[name](node, events, **params)
    except TypeError as exc:  # a client sent parameters this job does not take
        raise ConfigError(f"Bad parameters for {name}: {exc}.") from exc
