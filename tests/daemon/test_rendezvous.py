"""The daemon's registration and relay slot at its rendezvous point heal themselves: a
point that restarts (same identity, same port) has them back within seconds, and a point
that refuses says why in ``state()``, which status shows."""

from __future__ import annotations

from contextlib import asynccontextmanager

import pytest
import trio

from p2pbackup.daemon.node import running_node
from p2pbackup.daemon.rendezvous import PointLink
from p2pbackup.engine import events as ev
from p2pbackup.net import discovery
from tests.daemon.conftest import LOOPBACK, make_profile, pair

pytestmark = pytest.mark.trio


class _Point:
    """A rendezvous node in a task of its own, which the test stops and starts again."""

    def __init__(self, profile, nursery: trio.Nursery, public: bool) -> None:
        self.profile, self._nursery, self._public = profile, nursery, public
        self._stop = trio.Event()
        self._stopped = trio.Event()

    async def _serve(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        listen = None if self.profile.settings().get("listen") else LOOPBACK
        try:
            async with running_node(self.profile, listen, serve_rendezvous=True,
                                    public_relay=self._public) as node:  # fmt: skip
                task_status.started(node)
                await self._stop.wait()
        finally:
            self._stopped.set()

    async def start(self):
        self._stop, self._stopped = trio.Event(), trio.Event()
        return await self._nursery.start(self._serve)

    async def stop(self) -> None:
        self._stop.set()
        await self._stopped.wait()


async def _until(link: PointLink, reserved: bool) -> None:
    while link.reserved is not reserved:
        await link.changed.wait()


@asynccontextmanager
async def _linked(tmp_path, public: bool = True):
    """(point, alice's node, alice's PointLink, events it sent), alice pointed at it."""
    async with trio.open_nursery() as nursery:
        point = _Point(make_profile(tmp_path, "point"), nursery, public)
        point_node = await point.start()
        alice_profile = make_profile(tmp_path, "alice", rendezvous=point_node.addresses()[0])
        sent: list[ev.Event] = []
        async with running_node(alice_profile, LOOPBACK) as alice:
            link = PointLink(alice, sent.append, retry_first=0.1, retry_max=0.4)
            nursery.start_soon(link.run)
            yield point, point_node, alice, link, sent
            nursery.cancel_scope.cancel()


async def test_a_restarted_point_has_the_registration_and_slot_back(tmp_path):
    async with _linked(tmp_path) as (point, point_node, alice, link, sent):
        with trio.fail_after(5):
            await _until(link, True)
        assert link.state()["registered"] and link.state()["last_error"] is None
        await point.stop()
        with trio.fail_after(5):
            await _until(link, False)  # the connection closed: the slot went with it
        # Said as it happened (the next try may already have failed since: one dial each).
        assert any("closed" in e.error for e in sent if isinstance(e, ev.RendezvousChanged))
        with trio.fail_after(5):  # a renewal failed while the point was down...
            while "cannot be reached" not in (link.last_error or ""):
                await link.changed.wait()
        # ...which made libp2p refuse to dial it for a minute (its negative cache): the
        # point came back, and alice stayed away from it.
        point_node = await point.start()  # same identity, same port, nothing remembered
        with trio.fail_after(5):
            await _until(link, True)
        # Findable there again: the new point knows alice's node.
        found = await discovery.discover(
            point_node.host, alice.rendezvous(),
            discovery.node_namespace(alice.host.get_id()),
        )  # fmt: skip
        assert [p.peer_id for p in found] == [alice.host.get_id()]
    changes = [(e.registered, e.reserved) for e in sent if isinstance(e, ev.RendezvousChanged)]
    assert changes[0] == (True, True) and (False, False) in changes and changes[-1] == (True, True)


async def test_a_friends_point_refuses_a_stranger_and_says_so(tmp_path):
    async with _linked(tmp_path, public=False) as (_, point_node, alice, link, _):
        with trio.fail_after(5):
            while link.last_error is None:
                await link.changed.wait()
        state = link.state()
        assert state["registered"] is True and state["reserved"] is False
        assert state["last_error"] == (
            "The relay refused a reservation: it relays only for its owner's friends and "
            "their devices."
        )
        await pair(point_node, alice)  # now a friend: the next try gets a slot
        with trio.fail_after(5):
            await _until(link, True)
