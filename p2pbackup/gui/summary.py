"""The words the tray and the Overview share: one headline, one tooltip."""

from __future__ import annotations

from PySide6.QtCore import QCoreApplication

from p2pbackup.gui.models.status import StatusModel, TrayState, last_backup_time, when


def _tr(text: str) -> str:
    return QCoreApplication.translate("Summary", text)


def headline(model: StatusModel) -> str:
    """One line: the state in words a person understands."""
    if not model.running:
        return _tr("The backup service is not running")
    if model.status is None:
        return _tr("Asking the backup service…")
    return {
        TrayState.SAFE: _tr("Your files are backed up"),
        TrayState.BUSY: model.progress_text(),
        TrayState.ATTENTION: _tr("Your backup needs attention"),
        TrayState.OFFLINE: _tr("No friend can be reached"),
        TrayState.PAUSED: _tr("Backups are paused"),
    }[model.tray_state()]


def last_backup(status: dict) -> str:
    return _tr("Last backup: %1").replace("%1", when(last_backup_time(status)))


def friends_online(status: dict) -> str:
    total = int(status.get("friends") or 0)
    online = len(status.get("friends_online") or [])
    return _tr("Friends online: %1 of %2").replace("%1", str(online)).replace("%2", str(total))


def tooltip(model: StatusModel) -> str:
    lines = ["p2pbackup", headline(model)]
    if model.status is not None and model.running:
        lines += [last_backup(model.status), friends_online(model.status)]
    return "\n".join(lines)
