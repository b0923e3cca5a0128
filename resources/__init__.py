"""Icons and data shipped with p2pbackup (installed as p2pbackup.resources)."""
