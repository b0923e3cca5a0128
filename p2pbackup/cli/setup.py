"""``init`` and ``id``: create or recover a profile, and say who this node is."""

from __future__ import annotations

import argparse
import contextlib
import sys

from p2pbackup.cli.common import add_common, emit, profile_of
from p2pbackup.errors import ConfigError


def add_parsers(commands: argparse._SubParsersAction) -> None:
    init = commands.add_parser("init", help="create this device's profile")
    add_common(init)
    init.add_argument("--name", help="this device's name, as friends see it")
    init.add_argument(
        "--recover",
        action="store_true",
        help="recover a lost profile: read the 24-word phrase from standard input",
    )
    init.set_defaults(run=run_init)
    ident = commands.add_parser("id", help="print this node's ids and addresses")
    add_common(ident)
    ident.set_defaults(run=run_id)


def run_init(args: argparse.Namespace) -> int:
    # The first-run jobs the app's wizard calls too (daemon/firstrun.py): one implementation.
    from p2pbackup.daemon import firstrun

    profile = profile_of(args)
    if args.recover:
        if sys.stdin.isatty():
            print("Type your 24-word recovery phrase, then Enter:", file=sys.stderr)
        data = firstrun.recover(profile, sys.stdin.readline(), args.name)
    else:
        data = firstrun.create_identity(profile, args.name)
    from p2pbackup.core.keys import owner_fingerprint  # nacl: only init needs it

    text = [
        f"Profile created in {profile.home}.",
        f"Owner {owner_fingerprint(bytes.fromhex(data['owner_id']))}, node {data['node_id']}.",
    ]
    if not args.recover:
        text += [
            "",
            "Your recovery phrase (write it down; it is shown only this once):",
            "",
            f"    {data['recovery_phrase']}",
            "",
            "With it and one friend, you can get everything back on a new computer.",
        ]
    emit(args, data, "\n".join(text))
    return 0


def run_id(args: argparse.Namespace) -> int:
    from p2pbackup.daemon.identity import choose_listen_port, identity_of, public_addresses

    profile = profile_of(args).require()
    # When a node holds the profile (ConfigError), its port is known already.
    with contextlib.suppress(ConfigError), profile.lock():
        choose_listen_port(profile)
    device = identity_of(profile)
    node_id = device.peer_id
    data = {
        "node_id": node_id,
        "owner_id": device.keys.owner_id.hex(),
        "addresses": public_addresses(profile, node_id),
    }
    lines = [f"node   {node_id}", f"owner  {device.keys.owner_id.hex()}"]
    lines += [f"addr   {a}" for a in data["addresses"]]
    emit(args, data, "\n".join(lines))
    return 0
