"""``python -m p2pbackup.gui``: the desktop app (app.main)."""

import sys

from p2pbackup.gui.app import main

sys.exit(main())
