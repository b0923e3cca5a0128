"""The Restore wizard: a backup, then files, then where, then the restore and its report.

One module per page; the wizard (``wizard.py``) holds what the pages chose.
"""

from p2pbackup.gui.windows.restore.wizard import RestoreWizard, open_restore

__all__ = ["RestoreWizard", "open_restore"]
