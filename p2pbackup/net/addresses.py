"""Where a node can be reached: its interfaces' addresses, as multiaddrs.

Apart from the host so that commands which only tell the addresses (``id``)
need not import py-libp2p (about a second).
"""

from __future__ import annotations

import ifaddr
import multiaddr

DEFAULT_LISTEN = "/ip4/0.0.0.0/tcp/0"


def interface_addresses() -> list[str]:
    """This machine's IPv4 addresses, loopback last (what friends can actually dial)."""
    found = {
        ip.ip
        for adapter in ifaddr.get_adapters()
        for ip in adapter.ips
        if isinstance(ip.ip, str) and not ip.ip.startswith("169.254.")
    }
    return sorted(found, key=lambda ip: (ip.startswith("127."), ip))


def expand_unspecified(
    addrs: list[multiaddr.Multiaddr], interfaces: list[str]
) -> list[multiaddr.Multiaddr]:
    """``/ip4/0.0.0.0/...`` (listening everywhere) as one address per interface."""
    out = []
    for addr in addrs:
        text = str(addr)
        if text.startswith("/ip4/0.0.0.0/"):
            out += [multiaddr.Multiaddr(text.replace("0.0.0.0", ip, 1)) for ip in interfaces]
        else:
            out.append(addr)
    return out


def concrete_addresses(address: str) -> list[str]:
    """A listen address as friends can dial it: one per interface if it is 0.0.0.0."""
    addrs = expand_unspecified([multiaddr.Multiaddr(address)], interface_addresses())
    return [str(a) for a in addrs]
