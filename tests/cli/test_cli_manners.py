"""How the real command behaves at the edges of a terminal: Ctrl-C, a closed pipe, -v."""

from __future__ import annotations

import signal
import subprocess

from p2pbackup.cli.localgrid import CLI, LOOPBACK, LocalGrid


def test_ctrl_c_stops_the_daemon_with_one_line_and_exit_130(tmp_path):
    with LocalGrid(str(tmp_path)) as grid:
        grid.init("laptop")
        daemon = grid.command("laptop", "daemon", "--listen", LOOPBACK)
        assert "running" in daemon.stdout.readline()
        daemon.send_signal(signal.SIGINT)
        _, err = daemon.communicate(timeout=30)
        assert daemon.returncode == 130
        assert err.strip().splitlines() == ["p2pbackup: interrupted"]


def test_ctrl_c_while_an_invite_waits_exits_130_without_a_traceback(tmp_path):
    with LocalGrid(str(tmp_path)) as grid:
        grid.init("laptop")
        invite = grid.command("laptop", "invite", "--offer", "1G", "--listen", LOOPBACK)
        assert invite.stdout.readline().strip()  # the code: the node is up and waiting
        invite.send_signal(signal.SIGINT)
        _, err = invite.communicate(timeout=30)
        assert invite.returncode == 130
        assert "Traceback" not in err and "KeyboardInterrupt" not in err
        assert err.strip().splitlines()[-1] == "p2pbackup: interrupted"


def test_a_reader_that_goes_away_ends_the_command_quietly(tmp_path):
    with LocalGrid(str(tmp_path)) as grid:
        grid.init("laptop")
        process = grid.command("laptop", "id")
        process.stdout.close()  # as `p2pbackup id | head -0` does, before anything is written
        err = process.stderr.read()
        assert process.wait(timeout=30) == 141
        assert err == ""


def test_verbose_shows_our_log_but_no_library_chatter(tmp_path):
    with LocalGrid(str(tmp_path)) as grid:
        grid.init("laptop")
        process = grid.command("laptop", "-v", "friends")
        _, err = process.communicate(timeout=60)
        assert process.returncode == 0, err
        lines = err.splitlines()
        assert any("friends" in line for line in lines)  # our own debug/info lines
        assert not any("CID" in line or "libp2p" in line for line in lines), err


def test_id_gives_the_address_before_the_first_start_and_the_daemon_keeps_it(tmp_path):
    with LocalGrid(str(tmp_path)) as grid:
        grid.init("laptop")
        addresses = grid.cli("laptop", "id")["addresses"]
        assert addresses and all("/tcp/0/" not in a and "/p2p/12D3KooW" in a for a in addresses)
        daemon = grid.command("laptop", "daemon")  # listening everywhere, as by default
        try:
            assert "running" in daemon.stdout.readline()
            printed = {daemon.stdout.readline().split()[-1] for _ in addresses}
            assert printed == set(addresses)  # where the daemon says friends reach it
        finally:
            daemon.send_signal(signal.SIGINT)
            daemon.communicate(timeout=30)


def test_schedule_shows_itself_and_says_when_nothing_will_run_it(tmp_path):
    with LocalGrid(str(tmp_path)) as grid:
        grid.init("laptop")
        shown = grid.command("laptop", "schedule").communicate(timeout=60)[0]
        assert shown.startswith("Scheduled backups: every 1 h.")  # the default, unchanged
        assert "No daemon runs" in shown
        assert grid.cli("laptop", "schedule", "30m") == {
            "interval": 1800.0, "paused": False, "daemon": False, "next_run": None,
            "last_error": None,
        }
        grid.cli("laptop", "pause")
        grid.start("laptop")
        told = grid.cli("laptop", "resume")
        assert told["daemon"] is True and told["paused"] is False
        status = grid.command("laptop", "status").communicate(timeout=60)[0]
        assert "schedule         every 30 min, next at " in status


def test_unfriend_in_a_terminal_asks_first(tmp_path):
    import os

    from p2pbackup.storage.catalog import Catalog

    with LocalGrid(str(tmp_path)) as grid:
        grid.init("laptop")
        catalog = Catalog(os.path.join(grid.home("laptop"), "catalog.sqlite"))
        catalog.add_friend(b"\1" * 32, "bob", "12D3KooWbob", [], b"", 1 << 30, 1 << 30)
        catalog.close()
        leader, follower = os.openpty()  # a terminal: stdin is a tty, as for a person
        try:
            process = subprocess.Popen(
                [*CLI, "--home", grid.home("laptop"), "unfriend", "bob"], stdin=follower,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=grid.env,
            )  # fmt: skip
            os.write(leader, b"n\n")
            out, _ = process.communicate(timeout=60)
        finally:
            os.close(leader)
            os.close(follower)
        assert process.returncode == 1 and out.strip().endswith("Nothing changed.")
        assert "[y/N]" in out
        assert [f["name"] for f in grid.cli("laptop", "friends")] == ["bob"]
