"""Render the app's windows to PNG: ``python -m p2pbackup.gui.screenshots DIR [--xvfb]``.

The windows show fixed sample answers of a daemon (no daemon runs), so every picture is
the same from run to run. Offscreen, it renders the windows; with ``--xvfb`` it starts a
virtual screen and a tray host (Debian's xvfb and trayer) and renders the tray icon and
its menu as well. docs/gui.md says how, and docs/screenshots/ keeps the newest set.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

SAMPLE_STATUS = {
    "friends": 3, "friends_online": ["Alice", "Bob"], "offline": ["Carol"],
    "backup_now_survives": 1, "folders": ["/home/sam/Documents", "/home/sam/Pictures"],
    "snapshots": 42, "protected_bytes": 38_654_705_664, "protected_files": 18_250,
    "friends_that_could_disappear": 1, "head_rolled_back": [],
    "schedule": {"interval": 3600.0, "paused": False, "last_error": None},
}  # fmt: skip
GIB = 1 << 30
SAMPLE_FRIENDS = [
    {"name": "Alice", "online": True, "path": "direct", "i_store_for_them": 12 * GIB,
     "i_give": 50 * GIB, "they_store_for_me": 21 * GIB, "they_give": 50 * GIB},
    {"name": "Bob", "online": True, "path": "relay", "i_store_for_them": 3 * GIB // 2,
     "i_give": 20 * GIB, "they_store_for_me": 19 * GIB, "they_give": 20 * GIB},
    {"name": "Carol", "online": False, "last_seen": "2026-12-02T18:20:00+00:00",
     "i_store_for_them": 0, "i_give": 10 * GIB, "they_store_for_me": None, "they_give": 25 * GIB},
]  # fmt: skip
DISPLAY = ":97"


def _sample(app, *, attention: bool = False) -> None:
    """Put the sample answers in the app's model, as if its daemon had given them."""
    from p2pbackup.gui.bridge import DaemonState
    from p2pbackup.gui.supervisor import Service

    now = time.time()
    status = dict(SAMPLE_STATUS, last_backup=_iso(now - 25 * 60),
                  schedule=dict(SAMPLE_STATUS["schedule"], next_run=now + 35 * 60))  # fmt: skip
    if attention:
        status.update(last_backup=_iso(now - 5 * 86400), friends_that_could_disappear=0,
                      schedule=dict(status["schedule"], last_error="Carol's node is full."))
    app.watch.state = DaemonState.RUNNING
    app.supervisor.state = Service.RUNNING
    app.model.status, app.model.friends = status, SAMPLE_FRIENDS
    app.model.changed.emit()


def _iso(moment: float) -> str:
    from datetime import datetime

    return datetime.fromtimestamp(moment).astimezone().isoformat()


def _settle(ms: int = 150) -> None:
    from PySide6.QtCore import QEventLoop, QTimer

    loop = QEventLoop()
    QTimer.singleShot(ms, loop.quit)
    loop.exec()


def render(out: str, with_tray: bool) -> list[str]:
    from PySide6.QtGui import QColor, QPainter, QPixmap
    from PySide6.QtWidgets import QApplication

    from p2pbackup.gui.app import App
    from p2pbackup.gui.icons import app_icon, state_icon
    from p2pbackup.gui.models.status import TrayState

    qt = QApplication.instance() or QApplication([sys.argv[0]])
    qt.setApplicationName("p2pbackup")
    qt.setWindowIcon(app_icon())
    os.makedirs(out, exist_ok=True)
    written: list[str] = []

    def save(pixmap, name: str) -> None:
        path = os.path.join(out, name)
        if callable(pixmap):  # a widget's grab, after its layout has followed the changes
            _settle()
            pixmap = pixmap()
        pixmap.save(path)
        written.append(path)

    home = tempfile.mkdtemp(prefix="p2pbackup-shots-")  # nothing is written there
    app = App(home, tray=with_tray)
    window = app.window
    window.resize(window.sizeHint())
    _sample(app)
    window.show()
    _settle()
    save(window.grab, "main-overview.png")
    window.tabs.setCurrentWidget(window.friends)
    _settle()
    save(window.grab, "main-friends.png")
    window.tabs.setCurrentWidget(window.overview)
    _sample(app, attention=True)
    window.set_no_tray(app.tr("This desktop has no tray for p2pbackup's icon, so p2pbackup "
                              "stays in this window. Closing the window quits p2pbackup."))
    _settle()
    save(window.grab, "main-attention-no-tray.png")
    window.no_tray_reason = ""
    window.quit_on_close = False

    # A new profile: no friend, no folder.
    from p2pbackup.gui.bridge import DaemonState
    from p2pbackup.gui.supervisor import Service

    app.model.status = dict(SAMPLE_STATUS, friends=0, friends_online=[], offline=[],
                            folders=[], snapshots=0, protected_bytes=0, protected_files=0,
                            friends_that_could_disappear=None, last_backup=None)  # fmt: skip
    app.model.friends = []
    app.model.changed.emit()
    save(window.grab, "main-new-profile.png")
    window.tabs.setCurrentWidget(window.friends)
    save(window.grab, "main-friends-none.png")
    window.tabs.setCurrentWidget(window.overview)

    # The daemon died twice: it is not started a third time by itself.
    app.watch.state = DaemonState.NOT_RUNNING
    app.supervisor.state = Service.STOPPED
    app.supervisor.problem = app.tr("The backup service stopped (exit code 1).")
    app.model.changed.emit()
    app.supervisor.changed.emit()
    save(window.grab, "main-service-stopped.png")
    _sample(app)
    app.supervisor.problem = ""
    window.update_banner()

    from p2pbackup.gui.windows.restore import shots as restore_shots  # RESTORE

    restore_shots.render(save, _settle, home, window)

    # Every state icon at tray size, on a light and on a dark panel.
    size, states = 22, list(TrayState)
    strip = QPixmap((size + 10) * len(states) + 10, 2 * (size + 10) + 10)
    strip.fill(QColor("#f2f2f2"))
    painter = QPainter(strip)
    painter.fillRect(0, size + 15, strip.width(), strip.height(), QColor("#222222"))
    for i, state in enumerate(states):
        for row in range(2):
            painter.drawPixmap(10 + i * (size + 10), 8 + row * (size + 12),
                               state_icon(state).pixmap(size, size))  # fmt: skip
    painter.end()
    save(strip, "tray-icons.png")
    _activity(save, app, window)  # SHELL
    _firstrun(save, app, window)  # FIRSTRUN

    _pairing(save, home, window)
    _check_phrase(save, home, window)

    if with_tray and app.tray is not None:
        app.tray.show()
        _settle(1500)  # the tray host embeds the icon
        screen = qt.primaryScreen()
        icon = app.tray.icon.geometry()
        # The panel's corner: the icon and a little of the panel and desktop around it.
        left = max(0, icon.x() - 80)
        save(screen.grabWindow(0, left, 0, screen.size().width() - left, icon.bottom() + 24),
             "tray.png")  # fmt: skip
        menu = app.tray.menu
        menu.popup(icon.bottomLeft())
        _settle(500)
        area = menu.geometry().united(icon).adjusted(-8, -8, 8, 8)
        save(screen.grabWindow(0, area.x(), max(0, area.y()), area.width(), area.height()),
             "tray-menu.png")  # fmt: skip
        menu.hide()
        app.tray.hide()
    window.close()
    shutil.rmtree(home, ignore_errors=True)
    return written


def _pairing(save, home: str, window) -> None:
    """Invite, Accept and the Friends tab's edits, filled with sample answers (PAIR)."""
    from p2pbackup import errors
    from p2pbackup.gui.windows.accept import AcceptDialog
    from p2pbackup.gui.windows.friendedit import QuotaDialog, RemoveDialog, RenameDialog
    from p2pbackup.gui.windows.invite import InviteDialog

    def shot(dialog, name: str) -> None:
        dialog.show()
        dialog.adjustSize()
        save(dialog.grab, name)

    invite = InviteDialog(home, window)
    shot(invite, "invite-offer.png")
    invite.show_page(1)
    invite.make.hide()
    invite.expires_at = time.monotonic() + 9 * 60 + 41
    invite._event({"type": "InviteReady", "code": "7-guitar-reveal-orbit", "rendezvous": "",
                   "addresses": ["/ip4/192.168.1.20/tcp/40123/p2p/12D3KooWSam"]})  # fmt: skip
    shot(invite, "invite-code.png")
    invite.ticker.stop()
    invite._paired({"name": "Alice", "i_give": 20 * GIB, "they_give": 50 * GIB})
    shot(invite, "invite-paired.png")
    invite.hide()

    accept = AcceptDialog(home, window)
    accept.code.setText("7 guitar rev")
    shot(accept, "accept-typing.png")
    accept.code.setText("7-guitar-reveal-orbit")
    accept._failed(errors.InviteMismatch())
    shot(accept, "accept-wrong-code.png")
    accept._paired({"name": "Alice", "i_give": 20 * GIB, "they_give": 50 * GIB})
    shot(accept, "accept-paired.png")
    accept.hide()

    alice = dict(SAMPLE_FRIENDS[0], owner_id="ab" * 32)
    quota = QuotaDialog(home, alice, window)
    quota.size_field.setCurrentText("10 GiB")
    shot(quota, "friend-space.png")
    quota.hide()
    rename = RenameDialog(home, alice, window)
    shot(rename, "friend-rename.png")
    rename.hide()
    remove = RemoveDialog(home, alice, window)
    _settle()  # its dry run finds no daemon here: the sample answer replaces that
    remove._weighed({"name": "Alice", "dry_run": True, "friends_left": 2,
                     "latest_survives_losing": 0, "latest_records_short": 0}, None)  # fmt: skip
    shot(remove, "friend-remove.png")
    remove.hide()


def _check_phrase(save, home: str, window) -> None:
    """Backup ▸ Check my recovery phrase…, with a wrong word said (sample positions)."""
    from p2pbackup.gui.windows.checkphrase import CheckPhraseDialog

    dialog = CheckPhraseDialog(home, window)
    _settle()  # no daemon here: its "not running" is replaced below
    dialog._positions({"positions": [3, 11, 20]})
    for at, word in ((3, "abandon"), (11, "zoo"), (20, "orbit")):
        dialog.words.fields[at].setText(word)
    dialog.error.setText("Word 11 is not what your phrase has there. Check your copy of the "
                         "phrase and try again.")  # fmt: skip
    dialog.show()
    dialog.adjustSize()
    save(dialog.grab, "check-phrase-wrong-word.png")
    dialog.hide()


def _firstrun(save, app, window) -> None:
    """The Folders and schedule tab, and each page of the first-run wizard, with sample
    answers (FIRSTRUN). Nothing is created: the words and the answers are samples."""
    from unittest import mock

    from PySide6.QtCore import QSize

    from p2pbackup.core import phrase
    from p2pbackup.daemon import firstrun as jobs
    from p2pbackup.gui.windows.firstrun import FirstRunWizard, Page

    settings = {"folders": ["/home/sam/Documents", "/home/sam/Pictures"],
                "excludes": ["*.tmp", "node_modules", "Documents/cache"],
                "schedule": {"interval": 3600.0, "paused": False}, "bandwidth": 2 << 20,
                "offer": 20 * GIB}  # fmt: skip
    window.folders.model.values = settings
    window.folders.model.changed.emit()
    window.tabs.setCurrentWidget(window.folders)
    save(window.grab, "main-folders.png")
    window.tabs.setCurrentWidget(window.overview)

    home = tempfile.mkdtemp(prefix="p2pbackup-shots-")  # nothing is written there
    wizard = FirstRunWizard(home, app.watch, app.actions)
    wizard.settings.values = settings
    wizard.phrase = phrase.secret_to_phrase(bytes(range(32)))
    wizard.owner_id = "032e7e811682bfa2" + "00" * 24
    wizard.resize(wizard.sizeHint().expandedTo(QSize(680, 560)))

    def page(page_id: Page, name: str, before=None) -> None:
        wizard.setStartId(page_id)
        wizard.restart()
        wizard.show()
        if before is not None:
            before()
        save(wizard.grab, name)

    page(Page.WELCOME, "firstrun-welcome.png")
    page(Page.WORDS, "firstrun-words.png")
    with mock.patch.object(jobs, "phrase_challenge", return_value={"positions": [3, 11, 20]}):
        words = wizard.phrase.split()

        def typed() -> None:
            fields = wizard.confirm.words.fields
            fields[3].setText(words[2])
            fields[11].setText("guitar")
            wizard.confirm.error.setText("Word 11 is not what your phrase has there. Check your "
                                         "copy of the phrase and try again.")  # fmt: skip

        page(Page.CONFIRM, "firstrun-confirm.png", typed)

    def typo() -> None:
        wizard.recover.text.setPlainText(" ".join([*words[:5], "adust", *words[6:]]))

    page(Page.RECOVER, "firstrun-recover.png", typo)
    page(Page.FRIENDS, "firstrun-friends.png")
    page(Page.FOLDERS, "firstrun-folders.png")
    wizard.settings.values = {}
    wizard.hide()
    shutil.rmtree(home, ignore_errors=True)


def _activity(save, app, window) -> None:
    """The Activity tab with a day of sample news, and the question asked when quitting
    during a backup (SHELL)."""
    from p2pbackup.gui.models.activity import entry_of_event

    now = time.time()
    jobs = [
        {"id": 1, "name": "backup", "state": "finished", "ended": _iso(now - 5 * 3600)},
        {"id": 2, "name": "backup", "state": "failed", "ended": _iso(now - 4 * 3600),
         "error": {"message": "No friend can be reached: Alice, Bob and Carol are offline.",
                   "kind": "PeerError", "exit_code": 4}},
        {"id": 3, "name": "backup", "state": "finished", "ended": _iso(now - 3 * 3600)},
        {"id": 4, "name": "restore", "state": "finished", "ended": _iso(now - 2 * 3600)},
        {"id": 5, "name": "verify", "state": "failed", "ended": _iso(now - 90 * 60),
         "error": {"message": "internal error, see the log", "kind": "InternalError",
                   "exit_code": 1}},
        {"id": 6, "name": "backup", "state": "running", "started": _iso(now - 60),
         "progress": {"phase": "sending", "total_bytes": 3 * GIB, "done_bytes": GIB}},
    ]  # fmt: skip
    app.activity.set_jobs(jobs)
    for minutes, event in (
        (170, {"type": "AuditDone", "name": "Bob", "proved": 64, "missing": 0, "damaged": 0}),
        (150, {"type": "FriendUnseen", "name": "Carol", "days": 8.2, "last_seen": None}),
        (140, {"type": "RepairDone", "records": 12, "shares": 24,
               "why": "Carol away for 8 days"}),
        (100, {"type": "QuotaNearlyFull", "name": "Bob", "whose": "theirs",
               "used": 19 * GIB, "quota": 20 * GIB}),
    ):  # fmt: skip
        app.activity.add(entry_of_event(event, now - minutes * 60))
    window.tabs.setCurrentWidget(window.activity)
    save(window.grab, "main-activity.png")
    app.model.jobs[6] = {"name": "backup", "state": "running"}
    box = app._quit_question("backup")
    box.show()
    save(box.grab, "quit-during-backup.png")
    box.hide()
    app.model.jobs.clear()
    window.tabs.setCurrentWidget(window.overview)


def _under_xvfb(argv: list[str]) -> int:
    """Run this script again on a virtual screen with a tray host, then stop both."""
    for tool in ("Xvfb", "trayer"):
        if shutil.which(tool) is None:
            sys.exit(f"--xvfb needs {tool}: apt-get install xvfb trayer")
    # -wr: a white desktop, so the dark panel and the menu stand out in the pictures.
    screen = subprocess.Popen(["Xvfb", DISPLAY, "-screen", "0", "1024x640x24", "-wr",
                               "-nolisten", "tcp"], stderr=subprocess.DEVNULL)  # fmt: skip
    env = {**os.environ, "DISPLAY": DISPLAY, "QT_QPA_PLATFORM": "xcb"}
    tray = None
    try:
        time.sleep(1.0)  # Xvfb takes its display; nothing to wait on but the socket
        tray = subprocess.Popen(
            ["trayer", "--edge", "top", "--align", "right", "--widthtype", "pixel",
             "--width", "160", "--height", "28", "--transparent", "true", "--alpha", "0", "--tint",
             "0x2b2b2b", "--SetDockType", "true"], env=env, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        time.sleep(1.0)
        return subprocess.call([sys.executable, "-m", "p2pbackup.gui.screenshots", *argv,
                                "--tray"], env=env)  # fmt: skip
    finally:
        for process in (tray, screen):
            if process is not None:
                process.terminate()
                process.wait(10)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m p2pbackup.gui.screenshots")
    parser.add_argument("dir", help="where the PNG files go")
    parser.add_argument("--xvfb", action="store_true",
                        help="start Xvfb and trayer, and render the tray and its menu too")
    parser.add_argument("--tray", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.xvfb:
        return _under_xvfb([args.dir])
    if not args.tray:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    for path in render(args.dir, with_tray=args.tray):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
