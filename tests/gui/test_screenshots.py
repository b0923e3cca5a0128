"""The screenshot script renders every window offscreen, and the quota bars are drawn."""

from __future__ import annotations

from PySide6.QtGui import QColor, QImage

from p2pbackup.gui import screenshots
from p2pbackup.gui.quotabar import fraction


def test_the_screenshot_script_renders_the_windows(qtbot, tmp_path):
    written = screenshots.render(str(tmp_path), with_tray=False)
    names = {p.rsplit("/", 1)[-1] for p in written}
    assert {"main-overview.png", "main-friends.png", "tray-icons.png"} <= names
    friends = QImage(str(tmp_path / "main-friends.png"))
    assert friends.width() >= 600
    # Bob's store for me is 19 of 20 GiB: past 90 %, so his bar is drawn red.
    red = QColor("#c62828").rgb()
    assert any(friends.pixel(x, y) == red
               for y in range(friends.height()) for x in range(0, friends.width(), 2))


def test_fraction_is_clamped_and_unknown_without_numbers():
    assert fraction(5, 10) == 0.5
    assert fraction(15, 10) == 1.0
    assert fraction(None, 10) is None
    assert fraction(5, 0) is None
