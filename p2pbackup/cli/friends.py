"""Friends from the command line: daemon, invite, join, friends, quota, unfriend."""

from __future__ import annotations

import argparse
import contextlib
import shutil

import trio

from p2pbackup.cli.common import add_common, emit, profile_of
from p2pbackup.core.pairing import parse_code
from p2pbackup.core.placement import format_size, parse_size
from p2pbackup.daemon.node import probe_friends, running_node
from p2pbackup.errors import ConfigError, PairingError, PeerError
from p2pbackup.net import discovery, invite
from p2pbackup.storage.catalog import Catalog
from p2pbackup.storage.store import Usage

DEFAULT_OFFER = "20G"


def add_parsers(commands: argparse._SubParsersAction) -> None:
    daemon = commands.add_parser("daemon", help="run this node until stopped (an always-on friend)")
    add_common(daemon, json_output=False)
    daemon.add_argument(
        "--listen",
        action="append",
        metavar="MULTIADDR",
        help="where to listen (default /ip4/0.0.0.0/tcp/0; the port is kept)",
    )
    daemon.add_argument(
        "--serve-rendezvous",
        action="store_true",
        help="be a rendezvous point where friends' nodes find each other",
    )
    daemon.add_argument(
        "--rendezvous",
        metavar="MULTIADDR",
        help="a rendezvous point (a friend's always-on node); remembered in the profile",
    )
    daemon.set_defaults(run=run_daemon)

    inv = commands.add_parser("invite", help="make a one-time code for a friend to join with")
    add_common(inv)
    inv.add_argument(
        "--offer",
        default=DEFAULT_OFFER,
        metavar="SIZE",
        help=f"space you give this friend (default {DEFAULT_OFFER})",
    )
    inv.add_argument(
        "--minutes",
        type=float,
        default=invite.DEFAULT_VALIDITY / 60,
        help="how long the code stays valid (default 10)",
    )
    inv.add_argument("--listen", action="append", metavar="MULTIADDR")
    inv.add_argument(
        "--rendezvous",
        metavar="MULTIADDR",
        help="a rendezvous point (a friend's always-on node); remembered in the profile",
    )
    inv.set_defaults(run=run_invite)

    join = commands.add_parser("join", help="pair with a friend using their invite code")
    add_common(join)
    join.add_argument("code", help="the code your friend's invite printed")
    join.add_argument(
        "--peer",
        metavar="MULTIADDR",
        help="your friend's address, ending in /p2p/<node id> ('p2pbackup id' prints it)",
    )
    join.add_argument(
        "--offer",
        default=DEFAULT_OFFER,
        metavar="SIZE",
        help=f"space you give this friend (default {DEFAULT_OFFER})",
    )
    join.add_argument("--listen", action="append", metavar="MULTIADDR")
    join.add_argument(
        "--rendezvous",
        metavar="MULTIADDR",
        help="a rendezvous point (a friend's always-on node); remembered in the profile",
    )
    join.set_defaults(run=run_join)

    friends = commands.add_parser("friends", help="list friends and quotas")
    add_common(friends)
    friends.set_defaults(run=run_friends)

    quota = commands.add_parser("quota", help="change how much you store for a friend")
    add_common(quota)
    quota.add_argument("friend", help="name, or the start of their node or owner id")
    quota.add_argument("size", help="e.g. 500M, 20G, 1T")
    quota.set_defaults(run=run_quota)

    unfriend = commands.add_parser("unfriend", help="stop being friends, and drop their shares")
    add_common(unfriend)
    unfriend.add_argument("friend", help="name, or the start of their node or owner id")
    unfriend.set_defaults(run=run_unfriend)


def _node(args: argparse.Namespace, serve_rendezvous: bool = False):
    return running_node(profile_of(args), args.listen, args.rendezvous, serve_rendezvous)


def run_daemon(args: argparse.Namespace) -> int:
    async def _main() -> None:
        async with _node(args, args.serve_rendezvous) as node:
            role = " and rendezvous point" if args.serve_rendezvous else ""
            print(f"p2pbackup node{role} {node.peer_id} running; Ctrl-C stops it.", flush=True)
            await trio.sleep_forever()

    trio.run(_main)
    return 0


def _paired(args: argparse.Namespace, card, offer: int) -> int:
    data = {
        "paired": True,
        "name": card.name,
        "owner_id": card.owner_id.hex(),
        "they_give": card.offered_quota,
        "i_give": offer,
    }
    emit(
        args,
        data,
        f"Paired with {card.name}. You give them {format_size(offer)}; they give "
        f"you {format_size(card.offered_quota)}.",
    )
    return 0


def run_invite(args: argparse.Namespace) -> int:
    offer = parse_size(args.offer)

    async def _main() -> int:
        async with _node(args) as node:
            code = node.invites.create(node.card(offer), validity=args.minutes * 60)
            point = node.rendezvous()
            if point is not None:  # so a friend elsewhere finds us with the code alone
                namespace = discovery.invite_namespace(code.nameplate)
                await discovery.register(node.host, point, namespace)
            print(code, flush=True)  # alone on the first line, for scripts
            try:
                card = await node.invites.wait(code)
            finally:
                if point is not None:
                    await discovery.unregister(node.host, point, namespace)
            node.remember_friend(card, offer)
            return _paired(args, card, offer)

    return trio.run(_main)


def run_join(args: argparse.Namespace) -> int:
    code = parse_code(args.code)
    offer = parse_size(args.offer)
    peer = discovery.rendezvous_peer(args.peer) if args.peer else None

    async def _main() -> int:
        async with _node(args) as node:
            candidates = [peer] if peer else await _inviters(node, code.nameplate)
            for candidate in candidates:
                try:
                    card = await invite.join(node.host, candidate, code, node.card(offer))
                except PairingError as exc:
                    if "unknown here" in exc.message and candidate is not candidates[-1]:
                        continue  # another node with a pending invite: not ours
                    raise
                node.remember_friend(card, offer)
                return _paired(args, card, offer)
            raise PeerError("No node with that invite code was found at the rendezvous point.")

    return trio.run(_main)


LAN_WAIT = 8.0  # seconds to listen for nodes on the local network


async def _inviters(node, nameplate: int) -> list:
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


def _catalog(args: argparse.Namespace) -> tuple[Catalog, str]:
    profile = profile_of(args).require()
    return Catalog(profile.path("catalog.sqlite")), profile.path("pool")


def run_friends(args: argparse.Namespace) -> int:
    from p2pbackup.storage.sharepool import SharePool

    profile = profile_of(args).require()
    catalog = Catalog(profile.path("catalog.sqlite"))
    pool = SharePool(profile.path("pool"), lambda owner: 0)
    remote: dict[bytes, Usage | None] = {}
    if catalog.friends():

        async def _probe() -> None:
            async with running_node(profile) as node:
                remote.update(await probe_friends(node))

        with contextlib.suppress(ConfigError):  # a daemon holds the profile: catalog only
            trio.run(_probe)
    rows = []
    for f in catalog.friends():
        usage = remote.get(f.owner_id)
        rows.append(
            {
                "name": f.name,
                "owner_id": f.owner_id.hex(),
                "node_ids": list(f.node_ids),
                "addresses": list(f.addresses),
                "online": (usage is not None) if remote else None,
                "i_store_for_them": pool.used(f.owner_id),
                "i_give": f.i_give,
                "they_store_for_me": usage.used if usage else None,
                "they_give": usage.quota if usage else f.they_give,
            }
        )
    lines = [f"{'friend':16} {'online':7} {'I store for them':>22}  {'they store for me':>22}"]
    for r in rows:
        online = {True: "yes", False: "no", None: "?"}[r["online"]]
        theirs = "?" if r["they_store_for_me"] is None else format_size(r["they_store_for_me"])
        lines.append(
            f"{r['name'][:16]:16} {online:7} {format_size(r['i_store_for_them']):>9} of "
            f"{format_size(r['i_give']):>9}  {theirs:>9} of {format_size(r['they_give']):>9}"
        )
    none = "No friends yet: 'p2pbackup invite' makes a code."
    emit(args, rows, "\n".join(lines) if rows else none)
    return 0


def run_quota(args: argparse.Namespace) -> int:
    catalog, _ = _catalog(args)
    friend = catalog.find(args.friend)
    size = parse_size(args.size)
    catalog.set_quota(friend.owner_id, size)
    emit(
        args,
        {"name": friend.name, "i_give": size},
        f"You now give {friend.name} {format_size(size)}.",
    )
    return 0


def run_unfriend(args: argparse.Namespace) -> int:
    catalog, pool_path = _catalog(args)
    friend = catalog.find(args.friend)
    catalog.remove_friend(friend.owner_id)
    shutil.rmtree(f"{pool_path}/{friend.owner_id.hex()}", ignore_errors=True)
    emit(
        args,
        {"name": friend.name, "removed": True},
        f"{friend.name} is no longer a friend; the shares you kept for them are deleted.",
    )
    return 0
