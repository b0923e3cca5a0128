"""Two profiles pair through the CLI, each command a separate OS process."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

CLI = [sys.executable, "-m", "p2pbackup.cli.main"]
LOOPBACK = "/ip4/127.0.0.1/tcp/0"


def _run(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=60)
    if check and result.returncode:
        raise AssertionError(f"{args} failed ({result.returncode}): {result.stderr}")
    return result


@pytest.fixture
def profiles(tmp_path):
    ann, bob = str(tmp_path / "ann"), str(tmp_path / "bob")
    made = json.loads(_run("init", "--home", ann, "--name", "Ann", "--json").stdout)
    assert len(made["recovery_phrase"].split()) == 24
    _run("--home", bob, "init", "--name", "Bob")
    return ann, bob


def _invite(home: str) -> tuple[subprocess.Popen, str, str]:
    inviter = subprocess.Popen(
        [*CLI, "--home", home, "invite", "--offer", "1G", "--listen", LOOPBACK, "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    ready = json.loads(inviter.stdout.readline())  # its own JSON line, before anyone joins
    address = json.loads(_run("--home", home, "id", "--json").stdout)["addresses"][0]
    assert ready["addresses"] == [address]
    return inviter, ready["code"], address


def test_pairing_with_the_right_code(profiles):
    ann, bob = profiles
    inviter, code, address = _invite(ann)
    joined = _run(
        "--home",
        bob,
        "join",
        code,
        "--peer",
        address,
        "--offer",
        "2G",
        "--listen",
        LOOPBACK,
        "--json",
    )
    out, err = inviter.communicate(timeout=30)
    assert inviter.returncode == 0
    assert [json.loads(line)["name"] for line in out.splitlines()] == ["Bob"]  # JSON lines
    # The friend is told exactly what to type, on the LAN and from elsewhere.
    assert f"p2pbackup join {code}\n" in err
    assert f"p2pbackup join {code} --peer {address}" in err
    assert json.loads(joined.stdout)["name"] == "Ann"
    (bob_seen,) = json.loads(_run("--home", ann, "friends", "--json").stdout)
    assert (bob_seen["name"], bob_seen["i_give"], bob_seen["they_give"]) == (
        "Bob",
        1 << 30,
        2 << 30,
    )
    assert bob_seen["online"] is False  # Bob's node is not running
    daemon = subprocess.Popen([*CLI, "--home", bob, "daemon"], stdout=subprocess.PIPE, text=True)
    try:
        daemon.stdout.readline()  # listening again, on the port it remembered
        (bob_seen,) = json.loads(_run("--home", ann, "friends", "--json").stdout)
        assert bob_seen["online"] is True
        assert (bob_seen["they_store_for_me"], bob_seen["they_give"]) == (0, 2 << 30)
    finally:
        daemon.kill()
    _run("--home", ann, "quota", "Bob", "500M")
    (bob_seen,) = json.loads(_run("--home", ann, "friends", "--json").stdout)
    assert bob_seen["i_give"] == 500 << 20
    assert bob_seen["online"] is False and bob_seen["last_seen"]  # when he last answered
    _run("--home", ann, "unfriend", "Bob")
    assert json.loads(_run("--home", ann, "friends", "--json").stdout) == []


def test_a_wrong_code_fails_on_both_sides(profiles):
    ann, bob = profiles
    inviter, code, address = _invite(ann)
    nameplate, *words = code.split("-")
    wrong = "-".join([nameplate, *words[:2], "zoo" if words[2] != "zoo" else "ask"])
    joined = _run(
        "--home", bob, "join", wrong, "--peer", address, "--listen", LOOPBACK, check=False
    )
    out, err = inviter.communicate(timeout=30)
    assert joined.returncode != 0 and "does not match" in joined.stderr
    # One line a person can read, not a traceback; with --json, the same words as JSON.
    assert joined.stderr.startswith("p2pbackup: ") and len(joined.stderr.splitlines()) == 1
    assert inviter.returncode == 6  # on stderr only what the friend types: the error is JSON
    assert err.startswith("Give your friend the code.") and "p2pbackup:" not in err
    error = json.loads(out.splitlines()[-1])
    assert error["kind"] == "PairingError" and "does not match" in error["error"]
    assert json.loads(_run("--home", bob, "friends", "--json").stdout) == []


def test_bad_input_gets_clear_errors(profiles, tmp_path):
    ann, _ = profiles
    missing = _run("--home", str(tmp_path / "nobody"), "id", check=False)
    assert missing.returncode != 0 and "p2pbackup init" in missing.stderr
    again = _run("--home", ann, "init", check=False)
    assert again.returncode != 0 and "already exists" in again.stderr
    bad_code = _run(
        "--home", ann, "join", "not-a-code", "--peer", "/ip4/127.0.0.1/tcp/1", check=False
    )
    assert bad_code.returncode != 0 and "invite code" in bad_code.stderr
    bad_peer = _run("--home", ann, "join", "1-abandon-ability-able", "--peer", "garbage",
                    check=False)  # fmt: skip
    assert bad_peer.returncode == 2 and bad_peer.stderr.startswith("p2pbackup: --peer 'garbage'")
    assert "rendezvous" not in bad_peer.stderr
    unknown = _run("--home", ann, "quota", "Zed", "1G", check=False)
    assert unknown.returncode != 0 and "No friend matches" in unknown.stderr
    bad_size = _run("--home", ann, "invite", "--offer", "lots", check=False)
    assert bad_size.returncode != 0 and "500M" in bad_size.stderr


def test_init_recover_reads_the_phrase_and_gives_the_same_owner(tmp_path):
    made = json.loads(_run("init", "--home", str(tmp_path / "old"), "--json").stdout)
    recovered = subprocess.run(
        [*CLI, "--home", str(tmp_path / "new"), "init", "--recover", "--json"],
        input=made["recovery_phrase"].upper() + "\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert recovered.returncode == 0, recovered.stderr
    assert json.loads(recovered.stdout)["owner_id"] == made["owner_id"]
    assert "recovery_phrase" not in json.loads(recovered.stdout)
    typo = subprocess.run(
        [*CLI, "--home", str(tmp_path / "typo"), "init", "--recover"],
        input="abandon " * 23 + "artt\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert typo.returncode != 0 and "Word 24" in typo.stderr


def test_pairing_through_a_rendezvous_point_with_the_code_alone(profiles, tmp_path):
    ann, bob = profiles
    point_home = str(tmp_path / "point")
    _run("--home", point_home, "init", "--name", "Point")
    point = subprocess.Popen(
        [*CLI, "--home", point_home, "daemon", "--serve-rendezvous", "--listen", LOOPBACK],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        point.stdout.readline()
        address = json.loads(_run("--home", point_home, "id", "--json").stdout)["addresses"][0]
        inviter = subprocess.Popen(
            [*CLI, "--home", ann, "invite", "--listen", LOOPBACK, "--rendezvous", address],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        code = inviter.stdout.readline().strip()
        joined = _run(
            "--home", bob, "join", code, "--listen", LOOPBACK, "--rendezvous", address, "--json"
        )
        inviter.communicate(timeout=30)
        assert inviter.returncode == 0
        assert json.loads(joined.stdout)["name"] == "Ann"
        # Bob's node moves to another port; Ann finds it again through the point.
        moved = subprocess.Popen(
            [*CLI, "--home", bob, "daemon", "--listen", LOOPBACK], stdout=subprocess.PIPE, text=True
        )
        try:
            moved.stdout.readline()
            (bob_seen,) = json.loads(_run("--home", ann, "friends", "--json").stdout)
            assert bob_seen["online"] is True
        finally:
            moved.kill()
        # A second node on a profile is refused; commands go to the running daemon instead.
        busy = _run("--home", point_home, "daemon", check=False)
        assert busy.returncode != 0 and "already running on this profile" in busy.stderr
        through = _run("--home", point_home, "join", code, check=False)
        assert through.returncode != 0 and "--rendezvous" in through.stderr
        # A node that knows neither the inviter's address nor a rendezvous point says so.
        carol = str(tmp_path / "carol")
        _run("--home", carol, "init")
        without = _run("--home", carol, "join", code, check=False)
        assert without.returncode != 0 and "--rendezvous" in without.stderr
    finally:
        point.kill()
