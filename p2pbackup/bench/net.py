"""``python -m p2pbackup.bench net``: shares over libp2p to friend nodes in other processes.

Friend nodes are real ``p2pbackup daemon`` processes on 127.0.0.1. The bench
is the owner's device: it puts and gets 1 MiB shares to one friend, then
spread over four, with many requests in flight, and times small requests.
In the same run, the same messages go over plain trio TCP to sink processes
(``rawtcp``): the ceiling, and each libp2p figure as a ratio of it. Every
phase runs ``REPEATS`` times; the medians are reported. Puts also report CPU
seconds per GB at each end (the bench process, the friends together), and
raw TCP's at both ends together: on two shared cores, speed follows CPU.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import AsyncExitStack

import trio

from p2pbackup.bench import rawtcp
from p2pbackup.bench.cpu import Meter, per_gb
from p2pbackup.core import erasure
from p2pbackup.core.certificate import issue_certificate
from p2pbackup.core.keys import OwnerKeys, new_secret
from p2pbackup.net.client import remote_store
from p2pbackup.net.host import NodeIdentity, build_host, listen_addrs
from p2pbackup.net.locate import peer_at
from p2pbackup.storage.catalog import Catalog
from p2pbackup.storage.store import ShareKey

MiB = 1024 * 1024
CLI = [sys.executable, "-m", "p2pbackup.cli.main"]
ENV = {**os.environ, "P2PBACKUP_MDNS": "0"}  # everything stays on 127.0.0.1
IN_FLIGHT = 16  # requests in flight per friend
REPEATS = 3


def _start_friend(home: str, owner: OwnerKeys) -> tuple[subprocess.Popen, str]:
    subprocess.run([*CLI, "--home", home, "init", "--name", os.path.basename(home)],
                   check=True, capture_output=True)  # fmt: skip
    catalog = Catalog(os.path.join(home, "catalog.sqlite"))
    catalog.add_friend(owner.owner_id, "owner", "", [], b"", 64 << 30, 0)  # a paired owner
    catalog.close()
    process = subprocess.Popen(
        [*CLI, "--home", home, "daemon", "--listen", "/ip4/127.0.0.1/tcp/0"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=ENV,
    )  # fmt: skip
    process.stdout.readline()  # "... running": listening, port remembered
    address = json.loads(
        subprocess.run([*CLI, "--home", home, "id", "--json"], capture_output=True,
                       check=True, text=True).stdout
    )["addresses"][0]  # fmt: skip
    return process, address


def _shares(count: int) -> list[tuple[ShareKey, bytes]]:
    out = []
    for i in range(count):
        rid = i.to_bytes(32, "big")
        _, (share,) = erasure.encode(rid, os.urandom(MiB - 84), 1, 1)
        out.append((ShareKey(rid, 0), share))
    return out


async def _spread(stores, shares, op) -> float:
    """Seconds to run ``op`` on every share, spread round-robin, IN_FLIGHT per friend."""
    limits = [trio.Semaphore(IN_FLIGHT) for _ in stores]
    started = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for i, (key, share) in enumerate(shares):
            which = i % len(stores)
            await limits[which].acquire()

            async def _one(which=which, key=key, share=share) -> None:
                try:
                    await op(stores[which], key, share)
                finally:
                    limits[which].release()

            nursery.start_soon(_one)
    return time.perf_counter() - started


async def _get(store, key, share) -> None:
    if len(await store.get(key)) != len(share):
        raise AssertionError("a share came back with the wrong size")


async def _measure(
    addresses: list[str], owner: OwnerKeys, total: int, sinks: list[int],
    friend_pids: list[int], sink_pids: list[int],
) -> dict:  # fmt: skip
    identity = NodeIdentity.from_seed(os.urandom(32))
    host = build_host(identity)
    cert = issue_certificate(owner, identity.node_key, "bench", int(time.time()))
    shares = _shares(total // MiB)
    result: dict = {}
    async with host.run(listen_addrs(["/ip4/127.0.0.1/tcp/0"])), AsyncExitStack() as stack:
        stores = []
        for n, address in enumerate(addresses):
            peer = peer_at(address)
            stores.append(await stack.enter_async_context(
                remote_store(host, peer, f"friend{n}", cert, owner.signing_key)
            ))  # fmt: skip
        for store in stores:
            await store.stat()  # connect first: ~250 ms each, not part of throughput
        size = sum(len(s) for _, s in shares)
        for label, count in (("1_friend", 1), ("4_friends", len(stores))):
            chosen, ports = stores[:count], sinks[:count]
            runs: dict[str, list[float]] = {}
            for _ in range(REPEATS):
                for store in chosen:  # start from empty pools
                    for key, _ in shares:
                        await store.remove(key)
                meter = Meter(tuple(friend_pids[:count])).start()
                seconds = await _spread(chosen, shares, lambda st, k, s: st.put(k, s))
                meter.stop()
                runs.setdefault("put", []).append(size / seconds / 1e6)
                runs.setdefault("put_cpu_owner", []).append(per_gb(meter.own_s, size))
                runs.setdefault("put_cpu_friends", []).append(per_gb(meter.others_s, size))
                seconds = await _spread(chosen, shares, _get)
                runs.setdefault("get", []).append(size / seconds / 1e6)
                for op, name in ((b"P", "raw_put"), (b"G", "raw_get")):
                    meter = Meter(tuple(sink_pids[:count])).start()
                    runs.setdefault(name, []).append(
                        await rawtcp.throughput(ports, op, size, MiB, IN_FLIGHT)
                    )
                    meter.stop()
                    runs.setdefault(f"{name}_cpu", []).append(
                        per_gb(meter.own_s + meter.others_s, size)
                    )
            medians = {name: statistics.median(values) for name, values in runs.items()}
            for name in ("put", "get"):
                result[f"{name}_mb_s_{label}"] = round(medians[name], 1)
                result[f"raw_tcp_{name}_mb_s_{label}"] = round(medians[f"raw_{name}"], 1)
                result[f"{name}_over_raw_tcp_{label}"] = round(
                    medians[name] / medians[f"raw_{name}"], 3
                )
            # Where a put's time goes on two shared cores: CPU per GB at both ends.
            result[f"put_cpu_s_per_gb_{label}"] = {
                "owner": round(medians["put_cpu_owner"], 2),
                "friends": round(medians["put_cpu_friends"], 2),
                "raw_tcp_both_ends": round(medians["raw_put_cpu"], 2),
            }
        latencies = []
        for _ in range(300):
            started = time.perf_counter()
            await stores[0].stat()
            latencies.append((time.perf_counter() - started) * 1000)
        latencies.sort()
        result["small_request_ms"] = {
            "median": round(statistics.median(latencies), 2),
            "p99": round(latencies[int(len(latencies) * 0.99) - 1], 2),
        }
    return result


def run(total: int = 256 * MiB, friends: int = 4) -> dict:
    owner = OwnerKeys.from_secret(new_secret())
    processes = []
    with tempfile.TemporaryDirectory(prefix="p2pbackup-bench-net-") as folder:
        try:
            addresses, sinks, friend_pids, sink_pids = [], [], [], []
            for n in range(friends):
                process, address = _start_friend(os.path.join(folder, f"friend{n}"), owner)
                processes.append(process)
                addresses.append(address)
                friend_pids.append(process.pid)
                process, port = rawtcp.start_sink()
                processes.append(process)
                sinks.append(port)
                sink_pids.append(process.pid)
            result = trio.run(_measure, addresses, owner, total, sinks, friend_pids, sink_pids)
        finally:
            for process in processes:
                process.terminate()
                process.wait(timeout=10)
    return {"share_mib": 1, "shares": total // MiB, "in_flight_per_friend": IN_FLIGHT,
            "repeats": REPEATS, **result}  # fmt: skip
