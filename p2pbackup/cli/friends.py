"""Friends from the command line: daemon, stop, invite, join, friends, quota, rename,
unfriend."""

from __future__ import annotations

import argparse
import functools
import sys

from p2pbackup.cli.common import add_common, plural, profile_of
from p2pbackup.cli.runner import run_job
from p2pbackup.core.sizes import format_size, parse_size

OFFER_HELP = "the profile's, 20G until changed"  # daemon/settings.py: offer


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
        "--public-relay",
        action="store_true",
        help="with --serve-rendezvous: relay for anyone, not only your friends' devices "
        "(smaller circuits: docs/security.md, 'Relay')",
    )
    daemon.add_argument(
        "--rendezvous",
        metavar="MULTIADDR",
        help="a rendezvous point (a friend's always-on node); remembered in the profile",
    )
    daemon.set_defaults(run=run_daemon)

    stop = commands.add_parser("stop", help="stop this profile's daemon")
    add_common(stop)
    stop.set_defaults(run=lambda args: run_job(args, "shutdown", {}, lambda _: "The daemon stops."))

    inv = commands.add_parser("invite", help="make a one-time code for a friend to join with")
    add_common(inv, json_help="print JSON lines: the code as soon as it exists, then the result")
    inv.add_argument(
        "--offer",
        metavar="SIZE",
        help=f"space you give this friend (default: {OFFER_HELP})",
    )
    inv.add_argument(
        "--minutes",
        type=float,
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
        metavar="SIZE",
        help=f"space you give this friend (default: {OFFER_HELP})",
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

    rename = commands.add_parser("rename", help="change the name you know a friend by")
    add_common(rename)
    rename.add_argument("friend", help="name, or the start of their node or owner id")
    rename.add_argument("name", help="the new name (this device only)")
    rename.set_defaults(run=run_rename)

    unfriend = commands.add_parser(
        "unfriend",
        help="stop being friends: drop their shares, and place what they held on the others",
    )
    add_common(unfriend)
    unfriend.add_argument("friend", help="name, or the start of their node or owner id")
    unfriend.add_argument(
        "--yes", "-y", action="store_true", help="do not ask for confirmation in a terminal"
    )
    unfriend.set_defaults(run=run_unfriend)


def run_daemon(args: argparse.Namespace) -> int:
    import trio  # a command the daemon answers never needs the event loop

    from p2pbackup.cli.runner import run_here
    from p2pbackup.daemon.daemon import run_daemon as run_daemon_forever
    from p2pbackup.daemon.identity import public_addresses

    async def _main() -> None:
        async with trio.open_nursery() as nursery:
            node = await nursery.start(
                functools.partial(run_daemon_forever, public_relay=args.public_relay),
                profile_of(args),
                args.listen,
                args.rendezvous,
                args.serve_rendezvous,
            )
            role = " and rendezvous point" if args.serve_rendezvous else ""
            print(f"p2pbackup node{role} {node.peer_id} running; Ctrl-C stops it.", flush=True)
            for address in public_addresses(node.profile, str(node.peer_id)):
                print(f"  friends reach it at {address}", flush=True)

    run_here(_main)
    return 0


def _paired_text(data: dict) -> str:
    return (
        f"Paired with {data['name']}. You give them {format_size(data['i_give'])}; they give "
        f"you {format_size(data['they_give'])}."
    )


def _offer(args: argparse.Namespace) -> int | None:
    """The space given, or None: the profile's default (the daemon's ``offer`` setting)."""
    return None if args.offer is None else parse_size(args.offer)


def run_invite(args: argparse.Namespace) -> int:
    from p2pbackup.core.pairing import DEFAULT_VALIDITY  # spake2: only when pairing

    minutes = DEFAULT_VALIDITY / 60 if args.minutes is None else args.minutes
    params = {"offer": _offer(args), "minutes": minutes}
    return run_job(args, "invite", params, _paired_text)


def run_join(args: argparse.Namespace) -> int:
    from p2pbackup.core.pairing import parse_code

    parse_code(args.code)  # a typo is refused before any node starts
    if args.peer:
        from p2pbackup.net import discovery  # libp2p: only when needed

        discovery.rendezvous_peer(args.peer, flag="--peer")
    params = {"code": args.code, "offer": _offer(args), "peer": args.peer}
    return run_job(args, "join", params, _paired_text)


def _friends_text(rows: list) -> str:
    if not rows:
        return "No friends yet: 'p2pbackup invite' makes a code."
    lines = [f"{'friend':16} {'online':7} {'I store for them':>22}  {'they store for me':>22}"]
    for r in rows:
        online = {True: "yes", False: "no", None: "?"}[r["online"]]
        theirs = "?" if r["they_store_for_me"] is None else format_size(r["they_store_for_me"])
        lines.append(
            f"{r['name'][:16]:16} {online:7} {format_size(r['i_store_for_them']):>9} of "
            f"{format_size(r['i_give']):>9}  {theirs:>9} of {format_size(r['they_give']):>9}"
            + (f"  {r['reached']}" if r.get("reached") else "")  # direct, through a relay...
        )
    return "\n".join(lines)


def run_friends(args: argparse.Namespace) -> int:
    return run_job(args, "friends", {}, _friends_text)


def _quota_text(data: dict) -> str:
    text = f"You now give {data['name']} {format_size(data['i_give'])}."
    if data["over_quota"]:
        text += (
            f"\nWARNING: you already keep {format_size(data['i_store_for_them'])} for "
            f"{data['name']}, more than that. Nothing is deleted, but nothing new of theirs "
            "fits until they are under it: their backups place new shares on their other "
            "friends instead."
        )
    return text


def run_quota(args: argparse.Namespace) -> int:
    params = {"friend": args.friend, "size": parse_size(args.size)}
    return run_job(args, "quota", params, _quota_text)


def run_rename(args: argparse.Namespace) -> int:
    params = {"friend": args.friend, "name": args.name}
    return run_job(args, "rename", params, lambda d: f"{d['old_name']} is now {d['name']} here.")


def _unfriend_text(data: dict) -> str:
    lines = [
        f"{data['name']} is no longer a friend; the {format_size(data['freed_bytes'])} you "
        "kept for them are deleted."
    ]
    if not data["published"]:
        lines.append("No other friend is online: your other devices hear of it, and what "
                     f"{data['name']} held is placed again, once one is (run verify --repair).")
    elif data["not_replaced"] or data["lost"]:
        lines.append(
            f"WARNING: {data['not_replaced']} of {data['records_checked']} records they held "
            "could not be placed again in full on your other friends (no room, or a friend "
            f"away); {data['at_risk']} would not survive losing another friend. Raise a "
            "friend's quota or pair with a new one, then run 'p2pbackup verify --repair'."
        )  # fmt: skip
    else:
        lines.append(f"{data['records_checked']} records they held are safe on your other "
                     f"friends ({data['replaced']} placed again).")  # fmt: skip
    survives = data.get("latest_survives_losing")
    if survives is not None:
        lines.append(f"You have {plural(data['friends_left'], 'friend')} left; your latest "
                     f"backup survives losing {survives} of them.")  # fmt: skip
    return "\n".join(lines)


def run_unfriend(args: argparse.Namespace) -> int:
    if sys.stdin.isatty() and not args.yes:  # a script has no one to ask: it gave the name
        answer = input(
            f"Stop being friends with {args.friend}? What they keep for you is placed on your "
            "other friends, and what you keep for them is deleted. [y/N] "
        )
        if answer.strip().lower() not in ("y", "yes"):
            print("Nothing changed.")
            return 1
    # A job, not a catalog edit: a running daemon owns the catalog and the pool's usage.
    return run_job(args, "unfriend", {"friend": args.friend}, _unfriend_text)
