"""A log line that holds a file name that is not UTF-8 is written, escaped, not lost."""

from __future__ import annotations

import logging
import pathlib

from p2pbackup.cli.logs import setup_logging
from tests.daemon.conftest import make_profile


def test_a_name_that_is_not_utf8_reaches_the_log_file(tmp_path):
    profile = make_profile(tmp_path, "laptop")
    path = setup_logging(profile.home, verbose=False)
    assert path is not None
    try:
        name = b"Docs/bad\xffname.txt".decode("utf-8", "surrogateescape")
        logging.getLogger("p2pbackup.engine").warning("Cannot write %s.", name)
        for handler in logging.getLogger().handlers:
            handler.flush()
    finally:
        setup_logging(None, verbose=False)  # back to the terminal only
    assert "Cannot write Docs/bad\\udcffname.txt." in pathlib.Path(path).read_text("utf-8")
