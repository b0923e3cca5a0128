"""The stress suite: real nodes on 127.0.0.1, broken on purpose.

``python -m p2pbackup.stress`` (or ``pytest -m stress``) kills the owner's backup at
random moments, kills friends mid-upload, fills a friend's disk, damages and deletes
shares, rolls every friend back and floods a node with frames from a stranger. Each
scenario ends with every published snapshot restored and compared byte for byte, and a
``verify --read-data``. Outside the default test run: it takes minutes.
"""
