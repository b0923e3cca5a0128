"""The progress line a person sees at a terminal while a job runs."""

from __future__ import annotations

import io

from p2pbackup.cli import runner
from p2pbackup.engine import events as ev


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_unchanged_files_count_and_the_line_is_redrawn_at_most_every_tenth_second(monkeypatch):
    clock = [100.0]
    monkeypatch.setattr(runner.time, "monotonic", lambda: clock[0])
    terminal = _Terminal()
    sink = runner.progress_sink(terminal)
    sink(ev.FilesUnchanged(2000, 5_000_000))
    for _ in range(500):  # all within the same tenth of a second: not drawn
        sink(ev.FileDone("a", 1000, "packed"))
    clock[0] += 2 * runner.REDRAW
    sink(ev.FileDone("b", 500_000, "full"))
    assert terminal.getvalue().split("\r")[1:] == [
        "2000 files, 5.0 MB",
        "2501 files, 6.0 MB",
    ]


def test_a_script_gets_no_progress_line_but_every_warning():
    piped = io.StringIO()
    sink = runner.progress_sink(piped)
    sink(ev.FilesUnchanged(10, 10))
    sink(ev.FileSkipped("Documents/locked", "could not be read: Permission denied"))
    assert piped.getvalue() == "\rskipped Documents/locked: could not be read: Permission denied\n"
