"""Who this device is and where friends reach it, without starting a node.

``init`` and ``id`` need the owner's keys, the device's peer id, its
certificate and its addresses, but not the network: nothing here imports
py-libp2p (a second of start-up), so those commands answer at once.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass

from nacl.signing import SigningKey

from p2pbackup.core.certificate import issue_certificate, verify_certificate
from p2pbackup.core.keys import OwnerKeys
from p2pbackup.core.peerid import peer_id
from p2pbackup.net.addresses import DEFAULT_LISTEN, concrete_addresses
from p2pbackup.storage.profile import Profile, node_seed, write_private


@dataclass(frozen=True)
class DeviceIdentity:
    keys: OwnerKeys
    seed: bytes  # the node key's Ed25519 seed: the libp2p host is made from it
    node_key: bytes  # its public key, as certificates name it
    peer_id: str
    certificate: bytes


def device_name(profile: Profile) -> str:
    return profile.settings().get("name") or socket.gethostname() or "this device"


def identity_of(profile: Profile) -> DeviceIdentity:
    """The owner's keys, this device's node key and peer id, and its certificate (made
    once, and again if the device's name or key changed)."""
    keys = OwnerKeys.from_secret(profile.secret())
    seed = node_seed(profile.path("node.key"))
    node_key = bytes(SigningKey(seed).verify_key)
    path = profile.path("certificate")
    try:
        with open(path, "rb") as f:
            certificate = f.read()
        cert = verify_certificate(certificate, keys.owner_id)
        if cert.node_key != node_key:
            raise FileNotFoundError
    except FileNotFoundError:
        name = device_name(profile)[:64]
        certificate = issue_certificate(keys, node_key, name, int(time.time()))
        write_private(path, certificate)
    return DeviceIdentity(keys, seed, node_key, peer_id(node_key), certificate)


def public_addresses(profile: Profile, node_id: str) -> list[str]:
    """Full multiaddrs a friend can dial, from the remembered listen addresses."""
    out = []
    for address in profile.settings().get("listen", [DEFAULT_LISTEN]):
        if address.endswith("/tcp/0"):
            continue  # never started: no port to tell yet
        out += [f"{concrete}/p2p/{node_id}" for concrete in concrete_addresses(address)]
    return out


def choose_listen_port(profile: Profile) -> None:
    """Pick the port a node that never ran will listen on, and remember it, so that
    ``id`` can give a friend the address before the first start. (A port taken by the
    time the node starts fails that start, as a remembered port always could.)"""
    wanted = profile.settings().get("listen") or [DEFAULT_LISTEN]
    if not any(a.endswith("/tcp/0") for a in wanted):
        return
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("0.0.0.0", 0))
        port = probe.getsockname()[1]
    profile.update_settings(listen=with_ports(wanted, [f"/ip4/0.0.0.0/tcp/{port}"]))


def with_ports(wanted: list[str], actual: list[str]) -> list[str]:
    """Replace port 0 by the port the host got, so friends find us at the same place."""
    ports = [a.rsplit("/tcp/", 1)[1] for a in actual if "/tcp/" in a]
    if not ports:
        return wanted
    return [a[: -len("/tcp/0")] + f"/tcp/{ports[0]}" if a.endswith("/tcp/0") else a for a in wanted]
