"""The Friends tab changes a friend's space, renames and removes one, against real
daemons; and the words it says, from the daemon's answers, without widgets."""

from __future__ import annotations

from PySide6.QtCore import Qt

from p2pbackup.gui.app import App
from p2pbackup.gui.models.friends import quota_warning, removal_report, removal_warning
from p2pbackup.gui.supervisor import Service
from p2pbackup.gui.windows.friendedit import QuotaDialog, RemoveDialog, RenameDialog

WAIT = 15000  # ms
GIB = 1 << 30


def _tab(qtbot, home: str):
    app = App(home, tray=False)
    app.start()
    qtbot.addWidget(app.window)
    tab = app.window.friends
    qtbot.waitUntil(lambda: app.supervisor.state is Service.RUNNING
                    and tab.friends.rowCount() == 1, timeout=WAIT)  # fmt: skip
    app.window.tabs.setCurrentWidget(tab)
    tab.table.selectRow(0)
    return app, tab


def test_change_space_rename_and_remove_a_friend_through_the_tab(qtbot, answer, grid):
    grid.init_all(["ann", "bob"])
    grid.start("ann", "bob")
    grid.pair("ann", "bob", offer="2G")
    ann = grid.home("ann")
    app, tab = _tab(qtbot, ann)
    assert tab.change_quota.isEnabled() and tab.rename.isEnabled() and tab.remove.isEnabled()

    qtbot.mouseClick(tab.change_quota, Qt.MouseButton.LeftButton)
    quota = tab.findChild(QuotaDialog)
    quota.size_field.lineEdit().selectAll()
    qtbot.keyClicks(quota.size_field.lineEdit(), "5G")
    with qtbot.waitSignal(quota.changed, timeout=WAIT):
        qtbot.mouseClick(quota.ok, Qt.MouseButton.LeftButton)
    assert answer(ann, "friends")[0]["i_give"] == 5 * GIB
    qtbot.waitUntil(lambda: "5.0 GiB" in tab.friends.index(0, 3).data(), timeout=WAIT)

    qtbot.waitUntil(lambda: tab.rename.isEnabled(), timeout=WAIT)  # still selected
    qtbot.mouseClick(tab.rename, Qt.MouseButton.LeftButton)
    rename = tab.findChild(RenameDialog)
    rename.name_field.selectAll()
    qtbot.keyClicks(rename.name_field, "Bobby")
    with qtbot.waitSignal(rename.changed, timeout=WAIT):
        qtbot.mouseClick(rename.ok, Qt.MouseButton.LeftButton)
    assert answer(ann, "friends")[0]["name"] == "Bobby"
    qtbot.waitUntil(lambda: tab.friends.index(0, 0).data() == "Bobby", timeout=WAIT)

    qtbot.mouseClick(tab.remove, Qt.MouseButton.LeftButton)
    remove = tab.findChild(RemoveDialog)
    assert not remove.ok.isEnabled()  # not before the dry run has said what it does
    qtbot.waitUntil(lambda: remove.ok.isEnabled(), timeout=WAIT)
    warning = remove.note.text()
    assert "If you remove Bobby" in warning and "no friend left" in warning
    assert answer(ann, "friends")[0]["name"] == "Bobby"  # the dry run removed nothing
    with qtbot.waitSignal(remove.changed, timeout=WAIT):
        qtbot.mouseClick(remove.ok, Qt.MouseButton.LeftButton)
    assert "Bobby is no longer a friend" in remove.note.text()
    assert answer(ann, "friends") == []
    qtbot.waitUntil(lambda: tab.friends.rowCount() == 0 and not tab.remove.isVisible(),
                    timeout=WAIT)  # fmt: skip
    app.window.hide()


def test_a_refused_edit_is_said_in_the_dialog_and_changes_nothing(qtbot, answer, grid):
    grid.init_all(["ann", "bob", "cat"])
    grid.start("ann", "bob", "cat")
    grid.pair("ann", "bob", "cat", offer="1G")
    ann = grid.home("ann")
    dialog = RenameDialog(ann, {"name": "bob", "owner_id": answer(ann, "friends")[0]["owner_id"]})
    qtbot.addWidget(dialog)
    dialog.name_field.setText("cat")  # taken by another friend
    qtbot.mouseClick(dialog.ok, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "called 'cat' already" in dialog.note.text(), timeout=WAIT)
    assert sorted(f["name"] for f in answer(ann, "friends")) == ["bob", "cat"]


def test_the_words_of_the_edits_come_from_the_daemons_answers():
    row = {"name": "Alice", "i_store_for_them": 3 * GIB, "i_give": 10 * GIB}
    assert quota_warning(row, 5 * GIB) == ""
    assert "already keep 3.0 GiB for Alice" in quota_warning(row, 2 * GIB)
    alone = removal_warning(row, {"name": "Alice", "friends_left": 0,
                                  "latest_survives_losing": None, "latest_records_short": 0})
    assert "3.0 GiB you keep for Alice's backup is deleted" in alone
    assert "no friend left" in alone
    risky = removal_warning(row, {"name": "Alice", "friends_left": 2,
                                  "latest_survives_losing": 0, "latest_records_short": 4})
    assert "2 friends left" in risky and "4 parts of your latest backup" in risky
    assert "would not survive losing one more friend" in risky
    assert "If you remove Alice" in removal_warning(row, {})  # no dry run: the general words
    done = {"name": "Alice", "freed_bytes": GIB, "published": True, "records_checked": 9,
            "not_replaced": 2, "lost": 0}
    assert "2 of 9 parts" in removal_report(done)
    assert "safe on your other friends" in removal_report(dict(done, not_replaced=0))
    assert "No other friend is online" in removal_report(dict(done, published=False))
