"""Two homes behind NAT and a rendezvous point between them, in Linux network namespaces.

``sudo python -m p2pbackup.netns`` (root, iproute2 and iptables) builds::

    alice 10.1.0.2 ── router A ──┐                  ┌── router B ── bob   10.2.0.2
                     192.0.2.1   ├─ "internet" ─────┤   192.0.2.2  └─ carol 10.2.0.3
                                 └─ point 192.0.2.10

The routers masquerade what leaves, drop whatever arrives unasked, and drop what is
sent to the other home's private addresses (the internet does not route them), so a
direct dial there hangs, as a dropped SYN does. Real ``p2pbackup`` daemons run in
each namespace; alice pairs with bob and carol through the point, backs up, the point
restarts (same identity and port), alice backs up again and restores byte-exact. It
reports each step's time, the path alice's friends are reached by, and whether the
hole punch (DCUtR) made a direct connection, as measured. Exit status 0: all held.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid

CLI = [sys.executable, "-m", "p2pbackup.cli.main"]
PORT = 4001
POINT_IP = "192.0.2.10"
# Each node listens on a port of its own, as by default (a random port, kept): two nodes
# of one home on one port would both be predicted at the NAT's one mapping of it.
HOMES = {"alice": ("a", "10.1.0.2"), "bob": ("b", "10.2.0.2"), "carol": ("b", "10.2.0.3")}
PORTS = {"point": PORT, "alice": 4101, "bob": 4102, "carol": 4103}
ROUTERS = {"a": ("192.0.2.1", "10.1.0.1"), "b": ("192.0.2.2", "10.2.0.1")}
DATA_FILES, FILE_SIZE = 5, 4 << 20  # 20 MiB of incompressible data, and a few small files


def _run(*cmd: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=check, capture_output=True, text=True)


class Net:
    """The namespaces, named with a random tag so two runs never meet; ``close`` removes
    them (and with them every veth, bridge and rule)."""

    def __init__(self) -> None:
        self.tag = uuid.uuid4().hex[:4]
        self.names: list[str] = []

    def ns(self, name: str) -> str:
        return f"pbn{self.tag}-{name}"

    def exec(self, name: str, *cmd: str) -> list[str]:
        return ["ip", "netns", "exec", self.ns(name), *cmd]

    def sh(self, name: str, *cmd: str) -> None:
        _run(*self.exec(name, *cmd))

    def _add(self, name: str) -> None:
        _run("ip", "netns", "add", self.ns(name))
        self.names.append(name)
        self.sh(name, "ip", "link", "set", "lo", "up")

    def _veth(self, a: str, a_if: str, b: str, b_if: str) -> None:
        _run("ip", "link", "add", a_if, "netns", self.ns(a), "type", "veth",
             "peer", "name", b_if, "netns", self.ns(b))  # fmt: skip
        self.sh(a, "ip", "link", "set", a_if, "up")
        self.sh(b, "ip", "link", "set", b_if, "up")

    def build(self) -> None:
        for name in ("inet", "point", "ra", "rb", *HOMES):
            self._add(name)
        self.sh("inet", "ip", "link", "add", "br0", "type", "bridge")
        self.sh("inet", "ip", "link", "set", "br0", "up")
        public = {"point": POINT_IP, "ra": ROUTERS["a"][0], "rb": ROUTERS["b"][0]}
        for name, address in public.items():
            self._veth("inet", f"to-{name}", name, "pub")
            self.sh("inet", "ip", "link", "set", f"to-{name}", "master", "br0")
            self.sh(name, "ip", "addr", "add", f"{address}/24", "dev", "pub")
        for home, (_, lan_ip) in ROUTERS.items():
            router = f"r{home}"
            self.sh(router, "ip", "link", "add", "lan", "type", "bridge")
            self.sh(router, "ip", "link", "set", "lan", "up")
            self.sh(router, "ip", "addr", "add", f"{lan_ip}/24", "dev", "lan")
            self.sh(router, "sysctl", "-qw", "net.ipv4.ip_forward=1")
            # Anything not local goes "upstream" (a gateway that never answers), so the
            # other home's private addresses are routed, then dropped below, silently.
            self.sh(router, "ip", "route", "add", "default", "via", "192.0.2.254")
            for rule in (
                ["-t", "nat", "-A", "POSTROUTING", "-o", "pub", "-j", "MASQUERADE"],
                ["-A", "FORWARD", "-o", "pub", "-d", "10.0.0.0/8", "-j", "DROP"],
                ["-A", "FORWARD", "-i", "pub", "-m", "conntrack", "--ctstate",
                 "ESTABLISHED,RELATED", "-j", "ACCEPT"],
                ["-A", "FORWARD", "-i", "pub", "-j", "DROP"],
                ["-A", "INPUT", "-i", "pub", "-m", "conntrack", "--ctstate",
                 "ESTABLISHED,RELATED", "-j", "ACCEPT"],
                ["-A", "INPUT", "-i", "pub", "-j", "DROP"],
            ):  # fmt: skip
                self.sh(router, "iptables", *rule)
        for name, (home, address) in HOMES.items():
            self._veth(f"r{home}", f"to-{name}", name, "eth0")
            self.sh(f"r{home}", "ip", "link", "set", f"to-{name}", "master", "lan")
            self.sh(name, "ip", "addr", "add", f"{address}/24", "dev", "eth0")
            self.sh(name, "ip", "route", "add", "default", "via", ROUTERS[home][1])

    def close(self) -> None:
        for name in self.names:
            _run("ip", "netns", "delete", self.ns(name), check=False)


class Node:
    """One profile and its daemon in a namespace."""

    def __init__(self, net: Net, name: str, root: str) -> None:
        self.net, self.name, self.home = net, name, os.path.join(root, name)
        self.daemon: subprocess.Popen | None = None
        self.env = {**os.environ, "P2PBACKUP_MDNS": "0"}
        _run(*CLI, "--home", self.home, "init", "--name", name)

    def cli(self, *args: str, timeout: float = 300) -> dict | list:
        """A command run in this node's namespace (through its daemon), as JSON."""
        done = subprocess.run(
            self.net.exec(self.name, *CLI, "--home", self.home, *args, "--json"),
            capture_output=True, text=True, timeout=timeout, env=self.env,
        )  # fmt: skip
        if done.returncode:
            raise RuntimeError(f"{self.name} {' '.join(args)}: {done.stderr.strip()}")
        return json.loads(done.stdout.strip().splitlines()[-1])

    def start(self, *flags: str) -> str:
        """Start the daemon; its peer id."""
        self.daemon = subprocess.Popen(
            self.net.exec(self.name, *CLI, "--home", self.home, "daemon",
                          "--listen", f"/ip4/0.0.0.0/tcp/{PORTS[self.name]}", *flags),
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=self.env,
        )  # fmt: skip
        line = self.daemon.stdout.readline()
        if "running" not in line:
            raise RuntimeError(f"{self.name}'s daemon did not start: {line!r}")
        return line.split(" running")[0].split()[-1]

    def stop(self) -> None:
        if self.daemon is not None:
            self.daemon.terminate()
            try:
                self.daemon.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.daemon.kill()
            self.daemon = None

    def wait_reserved(self, timeout: float = 60) -> float:
        """Seconds until its daemon holds a slot at the point (status shows it)."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if ((self.cli("status").get("rendezvous") or {}).get("reserved")):  # type: ignore[union-attr]
                return time.monotonic() - started
            time.sleep(0.5)
        raise RuntimeError(f"{self.name} got no relay slot in {timeout:.0f} s")


def _timed(what: str, report: list[str], fn, *args):
    started = time.monotonic()
    result = fn(*args)
    report.append(f"{what:44} {time.monotonic() - started:6.1f} s")
    return result


def _pair(inviter: Node, joiner: Node) -> None:
    invite = subprocess.Popen(
        inviter.net.exec(inviter.name, *CLI, "--home", inviter.home, "invite", "--json"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=inviter.env,
    )  # fmt: skip
    code = json.loads(invite.stdout.readline())["code"]
    joined = joiner.cli("join", code, timeout=120)
    assert joined["paired"] is True, joined
    invite.communicate(timeout=60)


def _tree(root: str) -> dict[str, str]:
    out = {}
    for folder, _, files in os.walk(root):
        for name in files:
            path = os.path.join(folder, name)
            with open(path, "rb") as f:
                out[os.path.relpath(path, root)] = hashlib.sha256(f.read()).hexdigest()
    return out


def scenario(net: Net, root: str) -> list[str]:
    report: list[str] = []
    point = Node(net, "point", root)
    nodes = {name: Node(net, name, root) for name in HOMES}
    point_id = point.start("--serve-rendezvous", "--public-relay")
    address = f"/ip4/{POINT_IP}/tcp/{PORT}/p2p/{point_id}"
    try:
        for node in nodes.values():
            node.start("--rendezvous", address)
        for name, node in nodes.items():
            _timed(f"{name}: relay slot at the point", report, node.wait_reserved)
        alice, bob, carol = nodes["alice"], nodes["bob"], nodes["carol"]
        _timed("pair alice-bob through the point", report, _pair, alice, bob)
        _timed("pair alice-carol through the point", report, _pair, alice, carol)
        data = os.path.join(root, "data")
        os.makedirs(os.path.join(data, "small"))
        for i in range(DATA_FILES):
            with open(os.path.join(data, f"big{i}.bin"), "wb") as f:
                f.write(os.urandom(FILE_SIZE))
        for i in range(20):
            with open(os.path.join(data, "small", f"note{i}.txt"), "w") as f:
                f.write(f"note {i}\n" * 100)
        relayed = _point_bytes(net)
        alice.cli("folders", "add", data)  # (the daemon's first-run backup may start here)
        first = _timed("alice backs up 20 MiB", report, alice.cli, "backup")
        report.append(f"  bytes through the point's interface: {_point_bytes(net) - relayed}")
        report.append(f"  first backup: {json.dumps(first)[:300]}")
        report.append(f"  friends list says: {_paths(alice)}")
        report.append(f"  alice's TCP connections: {_connections(net)}")
        point.stop()
        _timed("point restarts (same identity and port)", report, point.start,
               "--serve-rendezvous", "--public-relay")  # fmt: skip
        for name, node in nodes.items():
            _timed(f"{name}: relay slot again after the restart", report, node.wait_reserved)
        _timed("alice sees bob and carol online again", report, _both_online, alice)
        with open(os.path.join(data, "after-restart.bin"), "wb") as f:
            f.write(os.urandom(1 << 20))
        relayed = _point_bytes(net)
        second = _timed("alice backs up again, after the restart", report, alice.cli, "backup")
        report.append(f"  bytes through the point's interface: {_point_bytes(net) - relayed}")
        report.append(f"  second backup: {json.dumps(second)[:300]}")
        out = os.path.join(root, "restored")
        _timed("alice restores the latest snapshot", report, alice.cli,
               "restore", "latest", "--to", out)  # fmt: skip
        restored = _tree(out)
        original = _tree(data)
        same = any(_strip(restored, p) == original for p in _prefixes(restored))
        report.append(f"restore byte-exact: {same} ({len(original)} files)")
        time.sleep(8)  # DCUtR drives its hole punches every 2 s after a relayed connection
        report.append(f"friends list says: {_paths(alice)}")
        tcp = _connections(net)
        report.append(f"alice's TCP connections: {tcp}")
        # Ground truth: home B's router drops every unsolicited packet, and alice cannot
        # reach 10.2.x, so a TCP connection between alice and home B's public address
        # exists only if both sides' simultaneous dials opened the NATs (DCUtR).
        punched = bool(tcp["direct to home B"])
        report.append(f"hole punch (DCUtR) made a direct connection: {punched}")
        for name in ("bob", "carol"):
            out = _run(*net.exec(name, "ss", "-Htn", "state", "established")).stdout
            direct = ROUTERS["a"][0] + ":" in out
            report.append(f"  {name}: {'direct (hole punched)' if direct else 'through the point'}")
        if not same:
            raise RuntimeError("the restore differs from the original")
    finally:
        for node in (*nodes.values(), point):
            node.stop()
    return report


def _both_online(alice: Node, timeout: float = 90) -> None:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if all(r["online"] for r in alice.cli("friends")):  # type: ignore[index]
            return
        time.sleep(1)
    raise RuntimeError(f"bob and carol were not both online within {timeout:.0f} s")


def _connections(net: Net) -> dict[str, list[str]]:
    """alice's established TCP connections, by where they go (``ss``, not our own word)."""
    out = _run(*net.exec("alice", "ss", "-Htn", "state", "established")).stdout
    peers = [line.split()[-1] for line in out.splitlines() if line.strip()]
    return {
        "to the point": [p for p in peers if p.startswith(POINT_IP + ":")],
        "direct to home B": [p for p in peers if p.startswith(ROUTERS["b"][0] + ":")],
        "other": [p for p in peers if not p.startswith(("192.0.2.", "127."))],
    }


def _point_bytes(net: Net) -> int:
    """Bytes in and out of the point's network interface so far."""
    stats = json.loads(_run(*net.exec("point", "ip", "-s", "-j", "link", "show", "pub")).stdout)
    counters = stats[0]["stats64"]
    return int(counters["rx"]["bytes"]) + int(counters["tx"]["bytes"])


def _paths(alice: Node) -> dict[str, str | None]:
    rows = alice.cli("friends")
    return {r["name"]: r.get("reached") or r.get("path") for r in rows}  # type: ignore[union-attr]


def _prefixes(tree: dict[str, str]) -> set[str]:
    """The folders a restore may have put the data under (the snapshot's own layout)."""
    out = {""}
    for path in tree:
        parts = path.split(os.sep)
        for i in range(1, len(parts)):
            out.add(os.sep.join(parts[:i]))
    return out


def _strip(tree: dict[str, str], prefix: str) -> dict[str, str]:
    if not prefix:
        return tree
    cut = prefix + os.sep
    return {p[len(cut):]: h for p, h in tree.items() if p.startswith(cut)}


def main() -> int:
    if os.geteuid() != 0 or not shutil.which("ip") or not shutil.which("iptables"):
        print("needs root, iproute2 and iptables", file=sys.stderr)
        return 2
    net = Net()
    root = tempfile.mkdtemp(prefix="p2pb-netns-")
    try:
        net.build()
        report = scenario(net, root)
    except Exception as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        print(f"(profiles and logs kept in {root})", file=sys.stderr)
        return 1
    finally:
        net.close()
    print("\n".join(report))
    shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
