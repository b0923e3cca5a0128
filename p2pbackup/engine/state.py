"""What a node remembers between backups.

The file index (to skip unchanged files without reading them), each file's
revlog and parent signature (to store changes as deltas), the records stored
and where their shares went, and the head it last published. Held in memory
here; the catalog in ``storage`` persists the same values.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from p2pbackup.core.chunking import Signature
from p2pbackup.core.head import HeadBody
from p2pbackup.core.manifest import ChainStep, Entry, Manifest
from p2pbackup.core.refs import RecordDescriptor
from p2pbackup.core.revlog import Revlog


@dataclass(frozen=True)
class FileState:
    """A file as the last backup saw it."""

    size: int
    mtime_ns: int
    inode: int
    entry: Entry
    signature: Signature | None


@dataclass(frozen=True)
class StoredRecord:
    descriptor: RecordDescriptor
    placement: dict[int, str]  # share index -> friend name


@dataclass
class BackupState:
    files: dict[str, FileState] = field(default_factory=dict)
    revlogs: dict[str, Revlog] = field(default_factory=dict)
    records: dict[bytes, StoredRecord] = field(default_factory=dict)
    contents: dict[bytes, tuple[ChainStep, ...]] = field(default_factory=dict)
    snapshots: list[Manifest] = field(default_factory=list)
    head_seq: int = 0
    head: HeadBody | None = None
