"""First run, as the app's wizard calls it (no daemon, no identity yet): create gives the
phrase once, confirm checks words back, recover reads a phrase forgivingly; and through
a daemon, only what makes sense on a profile that exists."""

from __future__ import annotations

import logging

import pytest
import trio

from p2pbackup.daemon import control, firstrun
from p2pbackup.daemon.daemon import run_daemon
from p2pbackup.daemon.settings import run_settings_job
from p2pbackup.engine import events as ev
from p2pbackup.errors import ConfigError, PhraseError
from p2pbackup.storage.profile import Profile
from tests.daemon.conftest import LOOPBACK


def _words(made: dict) -> list[str]:
    return made["recovery_phrase"].split()


def test_create_confirm_recover_round_trip(tmp_path):
    made = firstrun.create_identity(Profile(str(tmp_path / "laptop")), "laptop")
    words = _words(made)
    assert len(words) == 24 and Profile(str(tmp_path / "laptop")).settings()["name"] == "laptop"
    laptop = Profile(str(tmp_path / "laptop"))
    asked = firstrun.phrase_challenge(laptop)["positions"]
    assert len(asked) == 3 and all(1 <= p <= 24 for p in asked)
    answer = {str(p): words[p - 1].upper()[:4] for p in asked}  # any case, 4-letter prefixes
    assert firstrun.confirm_phrase(laptop, answer) == {"confirmed": True, "positions": asked}
    assert laptop.settings()["phrase_confirmed"] is True

    # On a new computer, the phrase as a person copied it: numbered, commas, capitals.
    typed = ", ".join(f"{i}. {w.capitalize()}" for i, w in enumerate(words, 1))
    again = firstrun.recover(Profile(str(tmp_path / "desktop")), typed, "desktop")
    assert again["owner_id"] == made["owner_id"] and again["node_id"] != made["node_id"]
    assert "recovery_phrase" not in again  # shown once, when it was made


def test_a_wrong_word_is_named_by_its_position_and_changes_nothing(tmp_path):
    laptop = Profile(str(tmp_path / "laptop"))
    words = _words(firstrun.create_identity(laptop))
    other = next(w for w in ("zoo", "abandon", "ability") if w != words[4])
    with pytest.raises(PhraseError) as raised:
        firstrun.confirm_phrase(laptop, {"1": words[0], "5": other, "9": words[8]})
    assert "Word 5 " in raised.value.message
    assert words[4] not in raised.value.message.split()  # never the right word
    assert "phrase_confirmed" not in laptop.settings()
    for bad in ({"1": words[0]}, {"0": "x", "1": "y", "2": "z"}, ["a", "b", "c"]):
        with pytest.raises(ConfigError):
            firstrun.confirm_phrase(laptop, bad)


def test_recover_says_which_word_to_fix_and_a_made_profile_is_never_overwritten(tmp_path):
    laptop = Profile(str(tmp_path / "laptop"))
    words = _words(firstrun.create_identity(laptop))
    secret = laptop.secret()
    typo = words[6][:-1] + ("q" if words[6][-1] != "q" else "z")
    broken = " ".join([*words[:6], typo, *words[7:]])
    with pytest.raises(PhraseError, match="Word 7"):
        firstrun.recover(Profile(str(tmp_path / "new")), broken)
    assert not Profile(str(tmp_path / "new")).exists
    with pytest.raises(ConfigError, match="already exists"):
        firstrun.recover(laptop, " ".join(words))
    with pytest.raises(ConfigError, match="already exists"):
        firstrun.create_identity(laptop)
    assert laptop.secret() == secret
    checked = firstrun.check_word("abandn")
    assert checked["word"] is None and "abandon" in checked["suggestions"]
    assert firstrun.check_word("ABAN") == {"word": "abandon", "suggestions": []}


@pytest.mark.trio
async def test_the_same_jobs_in_process_and_through_the_daemon_keep_the_phrase_out_of_logs(
    tmp_path, caplog
):
    caplog.set_level(logging.DEBUG)
    home = Profile(str(tmp_path / "laptop"))
    seen: list = []
    made = await run_settings_job(home, "create_identity", {"name": "laptop"}, seen.append)
    words = _words(made)
    async with trio.open_nursery() as nursery:
        await nursery.start(run_daemon, home, LOOPBACK)
        where = control.address(home.home)
        asked = await control.call(where, "phrase_challenge", {}, seen.append)
        answer = {str(p): words[p - 1] for p in asked["positions"]}
        done = await control.call(where, "confirm_phrase", {"words": answer}, seen.append)
        assert done["confirmed"] and home.settings()["phrase_confirmed"]
        with pytest.raises(ConfigError, match="already exists"):
            await control.call(where, "recover", {"phrase": made["recovery_phrase"]},
                               seen.append)  # fmt: skip
        nursery.cancel_scope.cancel()
    told = caplog.text + repr([ev.to_dict(e) for e in seen])
    assert not any(" ".join(words[i:i + 3]) in told for i in range(22))
