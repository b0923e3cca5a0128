"""The Friends tab's three edits, one small dialog each, through the daemon's settings
jobs (daemon/settings.py): ``quota`` (the space you give), ``rename`` (the name shown on
this device) and ``unfriend`` (remove, after its dry run has said what that does to the
backup's safety)."""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from p2pbackup import errors
from p2pbackup.core.sizes import format_size
from p2pbackup.gui.bridge import Request
from p2pbackup.gui.models.friends import (
    friend_key,
    quota_warning,
    removal_report,
    removal_warning,
)
from p2pbackup.gui.windows.pairing import OfferField


class FriendDialog(QDialog):
    """A form, a line for what went wrong, and a button that runs one settings job."""

    changed = Signal(dict)  # the job's answer: the friend was changed
    job = ""  # the settings job the button runs

    def __init__(self, home: str, row: dict, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.home, self.row = home, row
        self.name = str(row.get("name") or "")
        self.request: Request | None = None
        self.form = QFormLayout()
        self.note = QLabel()
        self.note.setWordWrap(True)
        self.note.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.buttons = QDialogButtonBox()
        self.ok = self.buttons.addButton("", QDialogButtonBox.ButtonRole.AcceptRole)
        self.ok.setDefault(True)
        self.ok.clicked.connect(self.run)
        self.cancel = self.buttons.addButton(self.tr("&Cancel"),
                                             QDialogButtonBox.ButtonRole.RejectRole)
        self.cancel.clicked.connect(self.reject)
        self.setMinimumWidth(self.fontMetrics().averageCharWidth() * 60)
        layout = QVBoxLayout(self)
        layout.addLayout(self.form)
        layout.addWidget(self.note, 1)
        layout.addWidget(self.buttons)

    def _field(self, text: str, field: QWidget) -> None:
        label = QLabel(text)
        label.setBuddy(field)
        self.form.addRow(label, field)

    def params(self) -> dict | None:
        """The job's parameters, or None while the form is not usable."""
        raise NotImplementedError

    def run(self) -> None:
        params = self.params()
        if params is None or self.request is not None:
            return
        self.ok.setEnabled(False)
        self.request = Request(self.home, self.job, params, self)
        self.request.result.connect(self._done)
        self.request.failed.connect(self._failed)
        self.request.no_daemon.connect(lambda: self._failed(errors.PeerError(self.tr(
            "The backup service is not running: nothing was changed."))))
        self.request.lost.connect(lambda: self._failed(errors.PeerError(self.tr(
            "The backup service stopped before it answered. Look again once it runs."))))
        self.request.finished.connect(self._finished)
        self.request.start()

    def _done(self, result: object) -> None:
        self.changed.emit(result if isinstance(result, dict) else {})
        self.accept()

    def _failed(self, exc: errors.P2PBackupError) -> None:
        self.note.setText(exc.message)  # settings errors are written for people

    def _finished(self) -> None:
        self.request = None
        self.ok.setEnabled(self.params() is not None)


class QuotaDialog(FriendDialog):
    job = "quota"

    def __init__(self, home: str, row: dict, parent: QWidget | None = None) -> None:
        super().__init__(home, row, parent)
        self.setWindowTitle(self.tr("Space for %1").replace("%1", self.name))
        self.setAccessibleName(self.windowTitle())
        self.size_field = OfferField()
        self.size_field.setCurrentText(format_size(int(row.get("i_give") or 0)))
        self.size_field.setAccessibleName(self.tr("Space you give %1").replace("%1", self.name))
        self._field(self.tr("&Space you give %1:").replace("%1", self.name), self.size_field)
        used = row.get("i_store_for_them")
        if isinstance(used, int):
            self.form.addRow("", QLabel(self.tr("You keep %1 for them now.").replace(
                "%1", format_size(used))))
        self.ok.setText(self.tr("C&hange"))
        self.size_field.editTextChanged.connect(self._edited)
        self._edited()

    def params(self) -> dict | None:
        given = self.size_field.given()
        return None if given is None else {"friend": friend_key(self.row), "size": given}

    def _edited(self) -> None:
        given = self.size_field.given()
        self.ok.setEnabled(given is not None and self.request is None)
        self.note.setText(quota_warning(self.row, given) if given is not None else self.tr(
            "Write the space as a size, such as 20 GiB, 500M or 1T."))


class RenameDialog(FriendDialog):
    job = "rename"

    def __init__(self, home: str, row: dict, parent: QWidget | None = None) -> None:
        super().__init__(home, row, parent)
        self.setWindowTitle(self.tr("Rename %1").replace("%1", self.name))
        self.setAccessibleName(self.windowTitle())
        self.name_field = QLineEdit(self.name)
        self.name_field.setAccessibleName(self.tr("New name"))
        self.name_field.selectAll()
        self.name_field.setMaxLength(64)  # daemon/settings.py MAX_NAME
        self._field(self.tr("&New name:"), self.name_field)
        self.form.addRow("", QLabel(self.tr("Only you see this name, on this computer.")))
        self.ok.setText(self.tr("&Rename"))
        self.name_field.textChanged.connect(self._edited)
        self._edited()

    def params(self) -> dict | None:
        new = self.name_field.text().strip()
        if not new or new == self.name:
            return None
        return {"friend": friend_key(self.row), "name": new}

    def _edited(self) -> None:
        self.ok.setEnabled(self.params() is not None and self.request is None)


class RemoveDialog(FriendDialog):
    """Asks the daemon first what removing would do (``dry_run``), shows it, and only
    then offers to remove; then says what was done."""

    job = "unfriend"

    def __init__(self, home: str, row: dict, parent: QWidget | None = None) -> None:
        super().__init__(home, row, parent)
        self.setWindowTitle(self.tr("Remove %1").replace("%1", self.name))
        self.setAccessibleName(self.windowTitle())
        self.ok.setText(self.tr("&Remove %1").replace("%1", self.name))
        self.ok.setDefault(False)
        self.cancel.setDefault(True)  # Enter does not remove a friend
        self.ok.setEnabled(False)
        self.result: dict | None = None
        self.close_button = QPushButton(self.tr("C&lose"))
        self.close_button.clicked.connect(self.accept)
        self.buttons.addButton(self.close_button, QDialogButtonBox.ButtonRole.AcceptRole)
        self.close_button.hide()
        self.note.setText(self.tr("Working out what removing %1 changes…").replace(
            "%1", self.name))
        self.dry = Request(home, "unfriend", {"friend": friend_key(row), "dry_run": True}, self)
        self.dry.result.connect(lambda answer: self._weighed(answer, None))
        self.dry.failed.connect(lambda exc: self._weighed({}, exc))
        self.dry.no_daemon.connect(lambda: self._weighed({}, errors.PeerError(self.tr(
            "The backup service is not running."))))
        self.dry.start()

    def _weighed(self, answer: object, exc: errors.P2PBackupError | None) -> None:
        text = removal_warning(self.row, answer if isinstance(answer, dict) else {})
        if exc is not None:
            text = self.tr("How safe your backup stays could not be worked out: %1").replace(
                "%1", exc.message) + "\n\n" + text
        self.note.setText(text)
        self.ok.setEnabled(exc is None or not isinstance(exc, errors.ConfigError))
        QTimer.singleShot(0, self, self.adjustSize)  # the warning whole, not cut

    def params(self) -> dict | None:
        return None if self.result is not None else {"friend": friend_key(self.row)}

    def _done(self, result: object) -> None:
        self.result = result if isinstance(result, dict) else {}
        self.changed.emit(self.result)
        self.note.setText(removal_report(self.result))
        QTimer.singleShot(0, self, self.adjustSize)
        self.ok.hide()
        self.cancel.hide()
        self.close_button.show()
        self.close_button.setDefault(True)
        self.close_button.setFocus()

    def _finished(self) -> None:
        self.request = None
        self.ok.setEnabled(self.result is None)
