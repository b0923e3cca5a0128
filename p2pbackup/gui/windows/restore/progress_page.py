"""Page 4: the restore as it runs (how far, how fast, how long still), then its report.

Stopping sends ``cancel`` with the job's id (hanging up would not stop it: the daemon
finishes a job whose client went away). The restore never leaves a half-written file:
each file is written under a temporary name and renamed whole (engine/restore.py), and
what was being written when it stopped is removed.
"""

from __future__ import annotations

import os

from PySide6.QtCore import QUrl
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWizard,
    QWizardPage,
)

from p2pbackup import errors
from p2pbackup.gui.bridge import Request
from p2pbackup.gui.models.restoring import RestoreMeter, report_lines

BAR_STEPS = 1000


class ProgressPage(QWizardPage):
    def __init__(self, wizard) -> None:
        super().__init__(wizard)
        self.setTitle(self.tr("Restoring"))
        self.running = False
        self.done = False
        self.stopping = False
        self.job: int | None = None
        self.result: dict | None = None
        self.error: errors.P2PBackupError | None = None
        self.meter = RestoreMeter()
        self._request: Request | None = None

        self.bar = QProgressBar()
        self.bar.setRange(0, BAR_STEPS)
        self.bar.setAccessibleName(self.tr("Restore progress"))
        self.counts = QLabel()
        self.counts.setAccessibleName(self.tr("Files restored"))
        self.speed = QLabel()
        self.speed.setAccessibleName(self.tr("Speed and time left"))
        self.stop_button = QPushButton(self.tr("&Stop restoring"))
        self.stop_button.clicked.connect(self.stop)
        self.outcome = QLabel()
        self.outcome.setWordWrap(True)
        self.outcome.setAccessibleName(self.tr("Outcome"))
        self.details = QPlainTextEdit()
        self.details.setReadOnly(True)
        self.details.setAccessibleName(self.tr("Report"))
        self.details.hide()
        self.open_button = QPushButton(self.tr("&Open folder"))
        self.open_button.clicked.connect(self.open_folder)
        self.open_button.hide()

        stop = QHBoxLayout()
        stop.addWidget(self.stop_button)
        stop.addStretch(1)
        opened = QHBoxLayout()
        opened.addWidget(self.open_button)
        opened.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.bar)
        layout.addWidget(self.counts)
        layout.addWidget(self.speed)
        layout.addLayout(stop)
        layout.addWidget(self.outcome)
        layout.addWidget(self.details, 10)  # the room goes to the report, when it shows
        layout.addLayout(opened)
        layout.addStretch(1)

    def initializePage(self) -> None:
        wizard = self.wizard()
        params: dict = {"selector": wizard.snap.id, "paths": wizard.selection.paths(),
                        "force": wizard.overwrite}  # fmt: skip
        if wizard.only_missing:  # sent only when chosen: an older daemon does not know it
            params["only_missing"] = True
        if wizard.in_place:
            params["in_place"] = True
        else:
            params["to"] = os.path.abspath(os.path.expanduser(wizard.folder))
        self.setTitle(self.tr("Restoring"))
        self.setSubTitle(self.tr("Getting your files back from your friends…"))
        self.running, self.done, self.stopping = True, False, False
        self.meter = RestoreMeter()
        self.counts.setText(self.tr("Starting…"))
        self.speed.setText("")
        for widget in (self.counts, self.speed, self.stop_button):
            widget.show()
        self.result, self.error = None, None
        self._request = request = Request(wizard.home, "restore", params, self)
        request.message.connect(self._message)
        request.event.connect(self._event)
        request.result.connect(self._restored)
        request.failed.connect(self._failed)
        request.no_daemon.connect(lambda: self._failed(errors.P2PBackupError(self.tr(
            "The backup service is not running, so nothing was restored."))))
        request.lost.connect(lambda: self._failed(errors.P2PBackupError(self.tr(
            "The backup service stopped during the restore. Files it had finished are in "
            "place; nothing half-written is left. Start the restore again to finish it."))))
        request.finished.connect(self._ended)
        request.start()

    # -- the daemon's news
    def _message(self, message: dict) -> None:
        job = message.get("job")
        if isinstance(job, dict) and isinstance(job.get("id"), int):
            self.job = job["id"]
            if self.stopping:  # Stop was pressed before the id came
                self._send_cancel()

    def _event(self, event: dict, _job: object) -> None:
        if self.meter.feed(event):
            self.bar.setValue(round(self.meter.fraction() * BAR_STEPS))
            self.counts.setText(self.meter.done_text())
            if not self.stopping:
                self.speed.setText(self.meter.speed_text())

    def _restored(self, result: object) -> None:
        self.result = result if isinstance(result, dict) else {}
        self.bar.setValue(BAR_STEPS)
        errors_ = self.result.get("errors") or []
        self.setTitle(self.tr("Your files are back") if not errors_
                      else self.tr("Restored, with problems"))  # fmt: skip
        self.setSubTitle(self.tr("The restore is done."))
        self.outcome.setText("\n".join(report_lines(self.result)))
        kept = self.result.get("kept_newer") or []
        there = self.result.get("kept_existing") or []
        if kept or there or errors_:
            lines = [self.tr("Left alone (newer on disk):"), *kept] if kept else []
            lines += [self.tr("Left alone (already there):"), *there] if there else []
            lines += [f"{e.get('path')}: {e.get('reason')}" for e in errors_]
            self.details.setPlainText("\n".join(lines))
            self.details.show()
        self.open_button.setVisible(self.folder() is not None)

    def _failed(self, exc: errors.P2PBackupError) -> None:
        self.error = exc
        if isinstance(exc, errors.JobCancelled):
            self.setTitle(self.tr("Restore stopped"))
            self.setSubTitle(self.tr("You stopped the restore."))
            self.outcome.setText(self.tr(
                "The files it had finished are in place and whole; nothing half-written was "
                "left. Restore again to bring back the rest."))
            self.open_button.setVisible(self.meter.files > 0 and self.folder() is not None)
        else:
            self.setTitle(self.tr("The restore did not finish"))
            self.setSubTitle(self.tr("Nothing half-written was left."))
            self.outcome.setText(exc.message)

    def _ended(self) -> None:
        self._request = None
        self.running, self.done = False, True
        self.stop_button.hide()
        self.speed.hide()
        if self.result is not None:
            self.counts.hide()  # the report says it, kept files included
        # Nothing is left to cancel: Close is the one way out.
        self.wizard().setOption(QWizard.WizardOption.NoCancelButtonOnLastPage, True)
        self.completeChanged.emit()

    # -- what the person can do
    def stop(self) -> None:
        """Ask the daemon to stop the restore; the report follows when it has."""
        if not self.running or self.stopping:
            return
        self.stopping = True
        self.stop_button.setEnabled(False)
        self.speed.setText(self.tr("Stopping…"))
        if self.job is not None:
            self._send_cancel()

    def _send_cancel(self) -> None:
        request = Request(self.wizard().home, "cancel", {"id": self.job}, self)
        request.failed.connect(lambda exc: self.speed.setText(exc.message))
        request.start()

    def folder(self) -> str | None:
        """The folder the files went to (in place: the first chosen file's folder)."""
        wizard = self.wizard()
        if not wizard.in_place:
            folder = os.path.abspath(os.path.expanduser(wizard.folder))
            return folder if os.path.isdir(folder) else None
        paths = wizard.selection.paths()
        label = paths[0].partition("/")[0] if paths else ""
        for folder in wizard.folders:
            if os.path.basename(os.path.normpath(folder)) == label and os.path.isdir(folder):
                return folder
        return None

    def open_folder(self) -> None:
        folder = self.folder()
        if folder is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(folder))

    def isComplete(self) -> bool:
        return self.done
