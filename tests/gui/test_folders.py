"""The Folders and schedule tab against a real daemon, the settings model without
widgets, and start at login (the XDG autostart entry)."""

from __future__ import annotations

import os

from PySide6.QtCore import QPoint, Qt
from PySide6.QtTest import QTest

from p2pbackup.gui import autostart
from p2pbackup.gui.app import App
from p2pbackup.gui.models.settings import interval_choices, interval_text
from p2pbackup.gui.windows.folders import KIB

WAIT = 8000  # ms


def _tab(qtbot, home: str):
    app = App(home, tray=False)
    qtbot.addWidget(app.window)
    app.start()
    app.window.tabs.setCurrentWidget(app.window.folders)
    tab = app.window.folders
    qtbot.waitUntil(lambda: "folders" in tab.model.values and tab.folders.add.isEnabled(),
                    timeout=WAIT)  # fmt: skip
    return app, tab


def _tick(qtbot, box) -> None:
    """A click on a check box's box (its middle may be past the end of its words)."""
    qtbot.mouseClick(box, Qt.MouseButton.LeftButton, pos=QPoint(8, box.height() // 2))


def _settled(qtbot, tab) -> None:
    qtbot.waitUntil(lambda: tab.model.settled, timeout=WAIT)


def test_the_folders_tab_changes_reach_the_daemon(qtbot, answer, laptop, tmp_path):
    app, tab = _tab(qtbot, laptop)
    assert not tab.notice.isVisible()
    documents, pictures = tmp_path / "Documents", tmp_path / "Pictures"
    documents.mkdir()
    pictures.mkdir()

    for folder in (documents, pictures):
        tab.folders.choose_folder = lambda f=folder: str(f)
        qtbot.mouseClick(tab.folders.add, Qt.MouseButton.LeftButton)
        _settled(qtbot, tab)
    qtbot.keyClicks(tab.pattern, "*.tmp")
    QTest.keyClick(tab.pattern, Qt.Key.Key_Return)
    _settled(qtbot, tab)
    index = tab.interval.findData(6 * 3600.0)
    tab.interval.setFocus()
    while tab.interval.currentIndex() != index:  # the keyboard, as a person without a mouse
        QTest.keyClick(tab.interval, Qt.Key.Key_Down)
    _settled(qtbot, tab)
    _tick(qtbot, tab.paused)
    _settled(qtbot, tab)
    _tick(qtbot, tab.limited)
    _settled(qtbot, tab)
    assert tab.model.bandwidth == 1024 * KIB and tab.limit.isEnabled()  # 1 MiB/s to start with
    tab.limit.setFocus()
    tab.limit.selectAll()
    qtbot.keyClicks(tab.limit, "512")
    QTest.keyClick(tab.limit, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: tab.model.bandwidth == 512 * KIB, timeout=WAIT)

    shown = answer(laptop, "settings", timeout=WAIT)
    assert shown["folders"] == [str(documents), str(pictures)]
    assert shown["excludes"] == ["*.tmp"]
    assert shown["schedule"]["interval"] == 6 * 3600 and shown["schedule"]["paused"] is True
    assert shown["bandwidth"] == 512 * KIB
    assert tab.folders.list.count() == 2 and tab.excludes.count() == 1
    assert tab.interval.currentText() == "Every 6 hours"

    tab.folders.list.item(0).setSelected(True)
    qtbot.mouseClick(tab.folders.remove, Qt.MouseButton.LeftButton)
    _settled(qtbot, tab)
    tab.excludes.item(0).setSelected(True)
    qtbot.mouseClick(tab.remove_pattern, Qt.MouseButton.LeftButton)
    _tick(qtbot, tab.paused)
    _tick(qtbot, tab.limited)
    qtbot.waitUntil(lambda: tab.model.settled and tab.model.bandwidth == 0, timeout=WAIT)
    shown = answer(laptop, "settings", timeout=WAIT)
    assert shown["folders"] == [str(pictures)] and shown["excludes"] == []
    assert shown["schedule"]["paused"] is False and shown["bandwidth"] == 0
    assert tab.folders.list.count() == 1 and not tab.limit.isEnabled()
    app.window.hide()


def test_a_refused_change_is_said_and_another_clients_change_is_shown(qtbot, laptop, grid):
    app, tab = _tab(qtbot, laptop)
    tab.folders.choose_folder = lambda: "/no/such/folder"
    qtbot.mouseClick(tab.folders.add, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: tab.notice.isVisibleTo(tab), timeout=WAIT)
    assert "/no/such/folder is not a folder" in tab.notice.text()
    grid.cli("laptop", "exclude", "cache")  # the CLI, through the daemon
    qtbot.waitUntil(lambda: tab.excludes.count() == 1, timeout=WAIT)  # SettingsChanged
    assert tab.excludes.item(0).text() == "cache"
    app.window.hide()


def test_interval_words():
    assert interval_text(0) == "Only when I ask"
    assert interval_text(3600) == "Every hour"
    assert interval_text(900) == "Every 15 minutes"
    assert interval_text(2 * 86400) == "Every 2 days"
    assert [v for v, _ in interval_choices(1800)] == [900, 1800, 3600, 21600, 86400, 0]
    assert [v for v, _ in interval_choices(3600)] == [900, 3600, 21600, 86400, 0]


def _exec(path: str) -> list[str]:
    """The Exec key read as the Desktop Entry spec says: the file format's escapes first
    (a doubled backslash is one), then double quotes in which a backslash escapes
    " ` $ and itself; %% is a percent sign."""
    with open(path, encoding="utf-8") as f:
        line = next(ln for ln in f.read().splitlines() if ln.startswith("Exec="))
    value = line[len("Exec=") :].replace("\\\\", "\\")
    args, word, quoted, i = [], None, False, 0
    while i < len(value):
        c = value[i]
        if quoted and c == "\\" and value[i + 1 : i + 2] in ('"', "`", "$", "\\"):
            word, i = word + value[i + 1], i + 2
            continue
        if c == '"':
            quoted, word = not quoted, word or ""
        elif c == " " and not quoted:
            if word is not None:
                args.append(word)
            word = None
        else:
            word = (word or "") + c
        i += 1
    if word is not None:
        args.append(word)
    return [arg.replace("%%", "%") for arg in args]


def test_start_at_login_writes_and_removes_an_xdg_autostart_entry(qtbot, laptop, tmp_path,
                                                                   monkeypatch):  # fmt: skip
    config = tmp_path / "my config"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config))
    app, tab = _tab(qtbot, laptop)
    assert not tab.at_login.isChecked()
    _tick(qtbot, tab.at_login)
    [entry] = os.listdir(config / "autostart")
    path = str(config / "autostart" / entry)
    assert path == autostart.entry_path(laptop) and tab.at_login.isChecked()
    command = _exec(path)
    assert command[-3:] == ["gui", "--home", os.path.realpath(laptop)]
    assert os.path.basename(command[0]) in ("p2pbackup", "python", "python3") or (
        command[1:3] == ["-m", "p2pbackup.cli.main"])  # fmt: skip
    _tick(qtbot, tab.at_login)
    assert not os.path.exists(path) and not tab.at_login.isChecked()
    app.window.hide()


def test_the_default_profile_starts_without_home_and_odd_paths_are_quoted(tmp_path,
                                                                          monkeypatch):  # fmt: skip
    monkeypatch.setenv("XDG_CONFIG_HOME", "relative/is/ignored")
    monkeypatch.setenv("HOME", str(tmp_path))
    default = tmp_path / "data"
    monkeypatch.setattr(autostart, "_platform_home", lambda: str(default))
    assert autostart.entry_path(str(default)) == str(
        tmp_path / ".config" / "autostart" / "p2pbackup.desktop")  # fmt: skip
    assert autostart.command(str(default))[-1] == "gui"
    odd = tmp_path / 'a "100%" $HOME `x` \\ home'
    path = autostart.enable(str(odd))
    assert path != autostart.entry_path(str(default))  # one entry per profile
    assert _exec(path)[-2:] == ["--home", str(odd)]
    autostart.disable(str(odd))
    assert not os.path.exists(path)
    autostart.disable(str(odd))  # not there: nothing to do


def test_the_tab_can_be_used_from_the_keyboard_and_by_a_screen_reader(qtbot, tmp_path):
    from PySide6.QtWidgets import QAbstractButton, QWidget

    from p2pbackup.gui import screenshots

    app = App(str(tmp_path), tray=False)
    qtbot.addWidget(app.window)
    screenshots._sample(app)  # as if a daemon ran: every control enabled
    app.window.show()
    app.window.tabs.setCurrentWidget(app.window.folders)
    tab = app.window.folders
    focusable = [
        w
        for w in tab.findChildren(QWidget)
        if w.focusPolicy() & Qt.FocusPolicy.TabFocus and w.isVisibleTo(tab)
    ]
    assert len(focusable) >= 10
    for widget in focusable:
        name = widget.accessibleName() or (widget.text() if isinstance(widget, QAbstractButton)
                                           else "")  # fmt: skip
        assert name, f"{type(widget).__name__} has no accessible name"
        if isinstance(widget, QAbstractButton):
            assert "&" in widget.text(), f"{widget.text()!r} has no keyboard shortcut"
    app.window.hide()


def test_the_settings_model_without_widgets(qtbot, laptop, tmp_path):
    from p2pbackup.gui.bridge import Watch
    from p2pbackup.gui.models.settings import SettingsModel

    watch = Watch(laptop)
    model = SettingsModel(laptop, watch)
    watch.start()
    qtbot.waitUntil(lambda: model.running and "folders" in model.values, timeout=WAIT)
    assert model.folders == [] and model.interval == 3600 and not model.paused
    model.change("folders", {"add": str(tmp_path)})
    model.change("bandwidth", {"limit": "2M"})
    qtbot.waitUntil(lambda: model.settled and model.bandwidth == 2 << 20, timeout=WAIT)
    assert model.folders == [str(tmp_path)] and model.refusal == ""
    with qtbot.waitSignal(model.failed, timeout=WAIT) as refused:
        model.change("schedule", {"interval": -1})
    assert refused.args == [model.refusal] and "positive" in model.refusal
    model.change("pause")
    qtbot.waitUntil(lambda: model.settled and model.paused, timeout=WAIT)
    assert model.refusal == ""  # a new change forgets the last refusal
    watch.stop()
