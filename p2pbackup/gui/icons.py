"""The app's SVG icons (resources/icons): the application icon and one per tray state.

Each tray icon is a coloured disc with a white glyph, a white rim and a thin dark rim,
so it reads on a light panel and on a dark one without knowing which it is.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

from PySide6.QtGui import QIcon

from p2pbackup.gui.models.status import TrayState


def icon_path(name: str) -> str:
    return str(resources.files("p2pbackup.resources") / "icons" / f"{name}.svg")


@cache
def app_icon() -> QIcon:
    return QIcon(icon_path("app"))


@cache
def state_icon(state: TrayState) -> QIcon:
    return QIcon(icon_path(state.value))
