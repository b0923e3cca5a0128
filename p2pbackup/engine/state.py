"""What a node remembers between backups.

The file index (to skip unchanged files without reading them), each file's
revlog and parent signature (to store changes as deltas), the records stored
and where their shares went, and the head it last published. Held in memory
while a backup runs; with a ``StateDB`` every change is also committed as
soon as it is true on friends, so an interrupted backup resumes.
"""

from __future__ import annotations

from collections.abc import Iterable

from p2pbackup.core.chunking import Signature
from p2pbackup.core.head import HeadBody
from p2pbackup.core.manifest import ChainStep, Manifest
from p2pbackup.core.revlog import Revlog, rebuild_plan
from p2pbackup.core.revlog import prune as prune_revlog
from p2pbackup.runtime import gc_paused
from p2pbackup.storage.statedb import FileState, StateDB, StoredRecord
from p2pbackup.storage.store import ShareKey

__all__ = ["BackupState", "FileState", "StoredRecord"]


class BackupState:
    """Records, placement and the head are loaded at once; the file index (seconds for a
    large tree) only by ``load_files``, and only for the folders a job works on."""

    def __init__(self, db: StateDB | None = None) -> None:
        self._db = db
        self._files: dict[str, FileState] | None = {} if db is None else None
        self._contents: dict[bytes, tuple[ChainStep, ...]] = {}  # revision -> how to rebuild
        self._scope: set[str] | None = None if db is None else set()  # labels loaded; None: all
        self.records: dict[bytes, StoredRecord] = {}
        self.head_seq = 0
        self.head: HeadBody | None = None
        self.last_snapshot: bytes | None = None
        self._signatures: dict[str, Signature] = {}
        self._revlogs: dict[str, Revlog] = {}
        self._challenges: dict[ShareKey, list[tuple[bytes, bytes]]] = {}  # without a db
        self._garbage: set[bytes] = set()
        self._in_flight: set[tuple[bytes, int, str]] = set()  # without a db
        self._manifests: dict[bytes, bytes] = {}  # without a db: manifests published here
        # The highest head each friend held or accepted: a lower one later is a rollback.
        self.friend_heads: dict[str, int] = {}
        # Friends found rolled back, {friend: (seen, known)}, until a backup or a repair has
        # checked what they hold: status and verify name them meanwhile.
        self.rollbacks: dict[str, tuple[int, int]] = {}
        # Copies made while their holder was unseen (engine/replace.py), dropped when it is
        # back: {(record id, index): (friend holding the copy, friend it stands in for)}.
        self.extras: dict[tuple[bytes, int], tuple[str, str]] = {}
        if db is not None:
            self.records = dict(db.records())
            self.head_seq, self.head, self.last_snapshot = db.head()
            self.friend_heads = db.friend_heads()
            self.rollbacks = db.rollbacks()
            self.extras = db.extras()

    @property
    def files(self) -> dict[str, FileState]:
        """Each regular file as the last backup saw it, by snapshot path."""
        self._require_files()
        return self._files

    @property
    def contents(self) -> dict[bytes, tuple[ChainStep, ...]]:
        """How to rebuild each revision a loaded file has: a file that returns to one of
        them (or a copy of it) is stored again by reference, not by value."""
        self._require_files()
        return self._contents

    def _require_files(self) -> None:
        if self._files is None:  # a job that forgot would see no file and decide wrongly
            raise RuntimeError("the file index is not loaded: call load_files first")

    def load_files(self, labels: Iterable[str] | None = None) -> None:
        """Load the file index of the folders with these snapshot labels (None: of all):
        a backup of one folder does not decode the rows of every folder ever backed up."""
        if self._db is None or self._scope is None:
            return  # everything is here already
        wanted = None if labels is None else set(labels) - self._scope
        if wanted == set() and self._files is not None:
            return
        with gc_paused():  # half a million acyclic objects for 100,000 files
            rows = dict(self._db.files(None if wanted is None else sorted(wanted)))
            if self._files is None or wanted is None:
                self._files = rows
            else:
                self._files.update(rows)
            self._contents.update(
                (fs.entry.rev_id, fs.entry.chain) for fs in rows.values() if fs.entry.chain
            )
        self._scope = None if wanted is None else self._scope | wanted

    def signature(self, path: str) -> Signature | None:
        """The signature of the file's last stored version, to delta against."""
        if path not in self._signatures and self._db is not None:
            data = self._db.signature(path)
            if data is not None:
                self._signatures[path] = Signature.from_bytes(data)
        return self._signatures.get(path)

    def revlog(self, path: str) -> Revlog:
        if path not in self._revlogs:
            known = self._db is not None and path in self.files  # a new path has none stored
            data = self._db.revlog(path) if known else None
            self._revlogs[path] = Revlog.from_bytes(data) if data else Revlog()
        return self._revlogs[path]

    def replace_revlog(self, path: str, revlog: Revlog) -> None:
        """A repacked revlog (the same revisions, stored differently)."""
        self._revlogs[path] = revlog
        if self._db is not None:
            self._db.put_revlog(path, revlog.to_bytes())

    def file_done(self, path: str, state: FileState, signature: Signature | None) -> None:
        self.files[path] = state
        if state.entry.chain:
            self.contents[state.entry.rev_id] = state.entry.chain
        if self._db is None:
            if signature is not None:
                self._signatures[path] = signature
        else:  # stored: read back when the file next changes, not held for every file
            self._signatures.pop(path, None)
            revlog = self._revlogs.pop(path, None)
            self._db.file_done(
                path,
                state,
                signature.to_bytes() if signature is not None else None,
                revlog.to_bytes() if revlog is not None and len(revlog) else None,
            )

    def record_stored(self, record_id: bytes, record: StoredRecord) -> None:
        self.records[record_id] = record
        # The shares where the record is placed leave ``in_flight`` with it (in the same
        # transaction); shares sent elsewhere (to a friend that failed) stay, for prune.
        if self._db is not None:
            self._db.record_stored(record_id, record)
        else:
            self._in_flight -= {(record_id, i, f) for i, f in record.placement.items()}

    def sending(self, record_id: bytes, placement: dict[int, str]) -> None:
        """Note shares about to be sent, before any byte leaves: if the run stops before
        the record is stored, prune knows what this device left on which friend."""
        if self._db is not None:
            self._db.sending(record_id, placement)
        else:
            self._in_flight.update((record_id, i, f) for i, f in placement.items())

    def in_flight(self) -> set[tuple[bytes, int, str]]:
        """(record id, share index, friend) of shares sent that no stored record holds."""
        return self._db.in_flight() if self._db is not None else set(self._in_flight)

    def landed(self, shares: list[tuple[bytes, int, str]]) -> None:
        """These shares are accounted for: part of a stored record, or removed."""
        if self._db is not None:
            self._db.landed(shares)
        else:
            self._in_flight.difference_update(shares)

    def put_extras(self, extras: dict[tuple[bytes, int], tuple[str, str]]) -> None:
        self.extras = dict(extras)
        if self._db is not None:
            self._db.put_extras(self.extras)

    def new_challenges(self, key: ShareKey, pairs: list[tuple[bytes, bytes]]) -> None:
        if self._db is not None:
            self._db.add_challenges(key.record_id, key.index, pairs)
        else:
            self._challenges.setdefault(key, []).extend(pairs)

    def next_challenge(self, key: ShareKey) -> tuple[bytes, bytes] | None:
        if self._db is not None:
            return self._db.take_challenge(key.record_id, key.index)
        pairs = self._challenges.get(key)
        return pairs.pop() if pairs else None

    def garbage(self) -> set[bytes]:
        return self._db.garbage() if self._db is not None else set(self._garbage)

    def set_garbage(self, record_ids: set[bytes]) -> None:
        self._garbage = set(record_ids)
        if self._db is not None:
            self._db.set_garbage(record_ids)

    def forget_records(self, record_ids: list[bytes]) -> None:
        for rid in record_ids:
            self.records.pop(rid, None)
        if self._db is not None:
            self._db.forget_records(record_ids)

    def forget_files(self, paths: list[str]) -> None:
        """Their chains used records that are gone: the next backup reads them again."""
        for path in paths:
            state = self.files.pop(path, None)
            if state is not None:
                self.contents.pop(state.entry.rev_id, None)
            self._signatures.pop(path, None)
            self._revlogs.pop(path, None)
        if self._db is not None:
            self._db.forget_files(paths)

    def saw_heads(self, seen: dict[str, int]) -> None:
        """Friends held or accepted these head sequence numbers; only a higher one counts."""
        higher = {f: seq for f, seq in seen.items() if seq > self.friend_heads.get(f, 0)}
        if not higher:
            return
        self.friend_heads.update(higher)
        if self._db is not None:
            self._db.put_friend_heads(self.friend_heads)

    def rolled_back(self, found: dict[str, tuple[int, int]]) -> None:
        """Note friends found holding an older head (kept until ``rollbacks_checked``)."""
        self.rollbacks = {**self.rollbacks, **found}
        if self._db is not None:
            self._db.put_rollbacks(self.rollbacks)

    def rollbacks_checked(self) -> None:
        """A backup or a repair asked friends what they hold and stored what they lost."""
        if self.rollbacks:
            self.rollbacks = {}
            if self._db is not None:
                self._db.put_rollbacks({})

    def manifest_bytes(self, snapshot_id: bytes) -> bytes | None:
        """A manifest this device published or read (they never change), or None."""
        if self._db is not None:
            return self._db.manifest(snapshot_id)
        return self._manifests.get(snapshot_id)

    def forget_lost(self, record_ids: set[bytes]) -> list[str]:
        """Friends no longer hold these records: local state stops calling them stored, and
        forgets whatever pointed at them (files, revisions, contents), so the next backup
        reads those files again and stores them anew. The loaded files' paths forgotten."""
        self.forget_records(sorted(record_ids & set(self.records)))
        stale = [
            path
            for path, fs in self.files.items()
            if any(step.blob.record_id in record_ids for step in fs.entry.chain)
        ]
        self.forget_files(stale)
        for path in list(self.files):  # a file returning to a lost content stores it again
            revlog = self.revlog(path)
            intact = [
                rev.rev_id
                for rev in revlog
                if not any(
                    step.blob.record_id in record_ids for step in rebuild_plan(revlog, rev.rev_id)
                )
            ]
            if len(intact) != len(revlog):
                self.replace_revlog(path, prune_revlog(revlog, intact).revlog)
        for rev_id, chain in list(self.contents.items()):
            if any(step.blob.record_id in record_ids for step in chain):
                del self.contents[rev_id]
        return stale

    def chain_stored(self, chain: tuple[ChainStep, ...]) -> bool:
        """Every record the chain reads is stored, as far as local state knows."""
        return all(step.blob.record_id in self.records for step in chain)

    def published(
        self, seq: int, body: HeadBody, manifest: Manifest | None, encoded: bytes = b""
    ) -> None:
        self.head_seq, self.head = seq, body
        if manifest is not None:
            self.last_snapshot = manifest.snapshot_id
            if self._db is None:
                self._manifests[manifest.snapshot_id] = encoded or manifest.to_bytes()
        if self._db is not None:
            if manifest is not None:
                self._db.put_manifest(manifest.snapshot_id, encoded or manifest.to_bytes())
            self._db.published(seq, body.to_bytes(), self.last_snapshot)
