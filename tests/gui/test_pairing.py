"""Two profiles pair through the Invite and Accept dialogs, typed as a person would,
against real daemons on 127.0.0.1; a wrong code is said as such and changes nothing."""

from __future__ import annotations

import signal

from PySide6.QtCore import Qt

from p2pbackup.core.pairing import parse_code
from p2pbackup.gui.app import App
from p2pbackup.gui.bridge import Request
from p2pbackup.gui.models import code as codes
from p2pbackup.gui.windows.accept import AcceptDialog
from p2pbackup.gui.windows.invite import InviteDialog

WAIT = 15000  # ms
LOOPBACK = "/ip4/127.0.0.1/tcp/0"


def _invite(qtbot, home: str, offer: str) -> InviteDialog:
    dialog = InviteDialog(home)
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.offer.lineEdit().selectAll()
    qtbot.keyClicks(dialog.offer.lineEdit(), offer)
    qtbot.mouseClick(dialog.make, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: bool(dialog.code), timeout=WAIT)
    return dialog


def _accept(qtbot, home: str, typed: str, address: str) -> AcceptDialog:
    dialog = AcceptDialog(home)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.keyClicks(dialog.code, typed)
    qtbot.keyClicks(dialog.peer, address)  # no LAN discovery in tests: the address shown
    assert dialog.pair.isEnabled(), dialog.hint.text()
    qtbot.mouseClick(dialog.pair, Qt.MouseButton.LeftButton)
    return dialog


def test_two_profiles_pair_through_the_invite_and_accept_dialogs(qtbot, answer, grid):
    grid.init_all(["ann", "bob"])
    grid.start("ann", "bob")
    ann, bob = grid.home("ann"), grid.home("bob")
    invite = _invite(qtbot, ann, "3G")
    assert invite.code_label.text() == invite.code and invite.left.text()
    assert invite.address.startswith("/ip4/127.0.0.1/")  # no rendezvous point: shown to type
    number, *words = invite.code.split("-")
    typed = f" {number}  {words[0].upper()} {words[1][:4]}-{words[2]} "  # as read aloud
    accept = _accept(qtbot, bob, typed, invite.address)
    qtbot.waitUntil(lambda: accept.close_button.isVisible(), timeout=WAIT)
    qtbot.waitUntil(lambda: invite.close_button.isVisible(), timeout=WAIT)
    assert "You and ann are now friends" in accept.status.text()
    assert "You and bob are now friends" in invite.outcome.text()
    assert "3.0 GiB" in invite.outcome.text() and "20.0 GiB" in invite.outcome.text()
    (ann_sees,) = answer(ann, "friends")
    (bob_sees,) = answer(bob, "friends")
    assert ann_sees["name"] == "bob" and ann_sees["i_give"] == 3 << 30
    assert bob_sees["name"] == "ann" and bob_sees["i_give"] == 20 << 30
    assert bob_sees["they_give"] == 3 << 30


def test_a_wrong_code_says_so_and_pairs_nobody(qtbot, answer, grid):
    grid.init_all(["ann", "bob"])
    grid.start("ann", "bob")
    ann, bob = grid.home("ann"), grid.home("bob")
    invite = _invite(qtbot, ann, "1G")
    number, *words = invite.code.split("-")
    wrong = "zoo" if words[2] != "zoo" else "abandon"
    accept = _accept(qtbot, bob, f"{number}-{words[0]}-{words[1]}-{wrong}", invite.address)
    qtbot.waitUntil(lambda: accept.code.isEnabled(), timeout=WAIT)  # the job ended
    assert "does not match" in accept.status.text() and "new one" in accept.status.text()
    assert not accept.pair.isEnabled() and "no longer works" in accept.hint.text()  # spent
    accept.code.selectAll()
    qtbot.keyClicks(accept.code, invite.code)  # another code can be typed and sent
    assert accept.pair.isEnabled()
    qtbot.waitUntil(lambda: invite.close_button.isVisible(), timeout=WAIT)
    assert "cannot be used again" in invite.outcome.text()
    assert answer(ann, "friends") == [] and answer(bob, "friends") == []


def test_cancel_withdraws_the_code_in_the_daemon(qtbot, answer, grid):
    grid.init_all(["ann", "bob"])
    grid.start("ann", "bob")
    ann, bob = grid.home("ann"), grid.home("bob")
    invite = _invite(qtbot, ann, "1G")
    code, address, job_id = invite.code, invite.address, invite.job.job_id
    qtbot.mouseClick(invite.cancel_button, Qt.MouseButton.LeftButton)
    assert not invite.isVisible()
    jobs: list = []

    def _cancelled(job: int) -> bool:
        request = Request(ann, "jobs")
        request.result.connect(jobs.append)
        with qtbot.waitSignal(request.finished, timeout=WAIT):
            request.start()
        return any(j["id"] == job and j["state"] == "cancelled" for j in jobs[-1])

    qtbot.waitUntil(lambda: _cancelled(job_id), timeout=WAIT)
    accept = _accept(qtbot, bob, code, address)  # the right code, too late
    qtbot.waitUntil(lambda: accept.code.isEnabled(), timeout=WAIT)
    assert "No invite with this code is waiting" in accept.status.text()
    assert answer(ann, "friends") == [] and answer(bob, "friends") == []
    # Cancelled before the daemon even said the job's id: cancelled once it does.
    hasty = InviteDialog(ann)
    qtbot.addWidget(hasty)
    hasty.show()
    hasty.start()
    job = hasty.job
    hasty.reject()
    qtbot.waitUntil(lambda: job.job_id is not None, timeout=WAIT)
    qtbot.waitUntil(lambda: _cancelled(job.job_id), timeout=WAIT)


def test_the_code_field_completes_words_and_says_what_is_wrong(qtbot, tmp_path):
    dialog = AcceptDialog(str(tmp_path))
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.activateWindow()
    qtbot.waitActive(dialog)  # the completer completes only into the field with focus
    qtbot.keyClicks(dialog.code, "7 guita")
    popup = dialog.code.completer().popup()
    assert popup.isVisible() and popup.model().index(0, 0).data() == "guitar"
    qtbot.keyClick(popup, Qt.Key.Key_Down)  # the first word offered, chosen
    qtbot.keyClick(popup, Qt.Key.Key_Return)
    assert dialog.code.text() == "7 guitar "  # the next word follows, after the same separator
    assert not dialog.pair.isEnabled() and "2 more words" in dialog.hint.text()
    qtbot.keyClicks(dialog.code, "gutar orbit")
    assert "Did you mean guitar" in dialog.hint.text() and not dialog.pair.isEnabled()


def test_a_typed_code_is_read_as_the_cli_reads_it_and_hints_point_at_the_wrong_part():
    assert codes.check(" 7  GUITAR reve-Orbit ").code == "7-guitar-reveal-orbit"
    assert codes.check("7-guitar-reveal-orbit").code == str(parse_code("7 guitar reveal orbit"))
    on_its_way = codes.check("7 guitar rev")
    assert on_its_way.code is None and not on_its_way.wrong and "2 more words" in on_its_way.hint
    typo = codes.check("7 gutar ")
    assert typo.wrong and "Word 1" in typo.hint and "guitar" in typo.hint
    assert codes.check("guitar reveal orbit").wrong  # the number first
    assert codes.check("1000 guitar").wrong
    assert codes.complete("7 gui", "guitar") == "7 guitar "  # the person's separator
    assert codes.complete("7-guitar-reveal-or", "orbit") == "7-guitar-reveal-orbit"


def test_invite_and_accept_are_offered_only_while_the_service_runs(qtbot, grid):
    grid.init("ann")
    app = App(grid.home("ann"), tray=False)  # not started: no daemon, none asked for
    qtbot.addWidget(app.window)
    assert not app.actions.invite.isEnabled() and not app.actions.accept.isEnabled()
    grid.start("ann")
    app.watch.start()
    qtbot.waitUntil(lambda: app.actions.invite.isEnabled(), timeout=WAIT)
    assert app.actions.accept.isEnabled()
    app.actions.invite.trigger()
    app.actions.accept.trigger()
    app.actions.invite.trigger()  # a second time: the one open comes forward
    assert len(app.window.findChildren(InviteDialog)) == 1
    assert len(app.window.findChildren(AcceptDialog)) == 1
    app.watch.stop()
    # The space offered starts at what the person chose for new friends (first run).
    request = Request(grid.home("ann"), "offer", {"size": 7 << 30})
    with qtbot.waitSignal(request.finished, timeout=WAIT):
        request.start()
    dialog = InviteDialog(grid.home("ann"))
    qtbot.addWidget(dialog)
    qtbot.waitUntil(lambda: dialog.offer.currentText() == "7.0 GiB", timeout=WAIT)
    assert dialog.offer.given() == 7 << 30


def test_with_a_rendezvous_point_the_code_alone_pairs(qtbot, grid):
    grid.init_all(["point", "ann", "bob"])
    started = [grid.command("point", "daemon", "--serve-rendezvous", "--listen", LOOPBACK)]
    try:
        assert "running" in started[0].stdout.readline()
        point = grid.address("point")
        for name in ("ann", "bob"):
            started.append(grid.command(name, "daemon", "--listen", LOOPBACK,
                                        "--rendezvous", point))  # fmt: skip
        for process in started[1:]:
            assert "running" in process.stdout.readline()
        invite = _invite(qtbot, grid.home("ann"), "2G")
        assert invite.address == "" and not invite.copy_address.isVisible()  # the code is enough
        accept = _accept(qtbot, grid.home("bob"), invite.code, "")
        qtbot.waitUntil(lambda: accept.close_button.isVisible(), timeout=WAIT)
        assert "You and ann are now friends" in accept.status.text()
        qtbot.waitUntil(lambda: invite.close_button.isVisible(), timeout=WAIT)
    finally:
        for process in reversed(started):
            process.send_signal(signal.SIGINT)
            process.wait(15)
