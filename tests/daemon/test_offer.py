"""The space each new friend is given by default (the first-run wizard asks it): a setting
of its own, used by an invite or a join that names none."""

from __future__ import annotations

import pytest
import trio

from p2pbackup.daemon.pairing import invite_friend, join_friend
from p2pbackup.daemon.settings import DEFAULT_OFFER, run_settings_job
from p2pbackup.engine import events as ev
from p2pbackup.errors import ConfigError
from tests.daemon.conftest import Nodes, make_profile

pytestmark = pytest.mark.trio
GIB = 1 << 30


async def test_the_default_offer_is_a_setting(tmp_path):
    profile = make_profile(tmp_path, "laptop")
    show = await run_settings_job(profile, "settings", {}, ev.ignore)
    assert show["offer"] == DEFAULT_OFFER == 20 * GIB
    assert await run_settings_job(profile, "offer", {"size": "7G"}, ev.ignore) == {"offer": 7 * GIB}
    with pytest.raises(ConfigError):
        await run_settings_job(profile, "offer", {"size": "lots"}, ev.ignore)
    with pytest.raises(ConfigError):
        await run_settings_job(profile, "offer", {"size": -1}, ev.ignore)
    assert (await run_settings_job(profile, "settings", {}, ev.ignore))["offer"] == 7 * GIB


async def test_an_invite_and_a_join_without_an_offer_give_the_default(tmp_path):
    async with trio.open_nursery() as nursery:
        nodes = Nodes(tmp_path, nursery)
        alice = await nodes.start("alice", offer=3 * GIB)
        bob = await nodes.start("bob")  # never set: 20 GiB
        ready: list[str] = []

        def _sink(event: ev.Event) -> None:
            if isinstance(event, ev.InviteReady):
                ready.append(event.code)

        nursery.start_soon(invite_friend, alice, _sink, None, 1.0)
        while not ready:
            await trio.sleep(0.01)
        joined = await join_friend(bob, ev.ignore, ready[0], None, alice.addresses()[0])
        assert joined["i_give"] == DEFAULT_OFFER and joined["they_give"] == 3 * GIB
        [bob_seen] = alice.catalog.friends()
        assert bob_seen.i_give == 3 * GIB and bob_seen.they_give == DEFAULT_OFFER
        await nodes.close()
