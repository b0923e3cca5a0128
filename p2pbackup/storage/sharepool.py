"""The shares I keep for my friends, on disk: one pool per owner.

Layout under the pool folder::

    <owner id hex>/
        head                      the owner's latest signed head
        shares/<id[:2]>/<id>.<i>  share i of record <id> (hex), as received
        .tmp-*                    a write in progress; removed at start-up, and while
                                  running once abandoned (see ``reclaim_temporaries``)

Every write goes to a temporary file, is fsynced, renamed into place and the
folder fsynced, so a node killed at any moment restarts with either the whole
share or none of it. A full disk removes the temporary file and raises a
StorageError; nothing half-written stays behind.

This module knows no network: the storage service in ``net`` authenticates
the peer, then calls these methods with the owner it acts for.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from p2pbackup.core import erasure, head, merkle
from p2pbackup.errors import (
    FormatError,
    IntegrityError,
    NoBlockProofs,
    OtherVersionKept,
    PeerError,
    StorageError,
)
from p2pbackup.storage.store import ShareKey, Usage

PROVE_PERSON_v1 = b"p2pb-prove_v1"  # frozen: owners precompute answers with it
_TMP = ".tmp-"


def prove_answer(nonce: bytes, share: bytes) -> bytes:
    """Proof that someone holds ``share``: a hash keyed by a fresh nonce."""
    if not 16 <= len(nonce) <= 64:
        raise PeerError("A proof challenge must have a 16 to 64 byte nonce.")
    return hashlib.blake2b(share, key=nonce, digest_size=32, person=PROVE_PERSON_v1).digest()


_PROOF_READ = 1 << 20  # a multiple of every tree's leaf: no leaf straddles two reads


def block_proofs(
    read: Callable[[int], bytes], size: int, blocks: list[int]
) -> list[tuple[bytes, list[bytes]]]:
    """For each block (of ``merkle.BLOCK`` bytes) of a share of ``size`` bytes read from
    its start with ``read``: the leaf of the share's tree that holds it, with the sibling
    hashes that tie it to the share hash (core/merkle.py). Hashing the whole share is the
    point: only a friend that keeps every byte can answer for any block."""
    hashed = size - merkle.HASH_SIZE  # every byte before the share's trailing hash
    count = merkle.block_count(max(0, hashed))
    if any(block >= count for block in blocks):
        raise FormatError(f"A block proof was asked of a share with only {count} blocks.")
    builder: merkle.MerkleBuilder | None = None
    leaves: list[int] = []
    found: dict[int, bytes] = {}
    at = 0
    while at < hashed:
        chunk = read(min(_PROOF_READ, hashed - at))
        if not chunk:
            break
        if builder is None:
            tree = merkle.TREES.get(chunk[4]) if len(chunk) >= 5 else None
            if tree is None:
                raise NoBlockProofs()
            leaves = [block * merkle.BLOCK // tree.leaf_size for block in blocks]
            builder = merkle.MerkleBuilder(tree, leaves)
        builder.feed(chunk)
        for leaf in leaves:
            start, length = builder.tree.leaf_range(hashed, leaf)
            if at <= start < at + len(chunk):
                found[leaf] = chunk[start - at : start - at + length]
        at += len(chunk)
    if at != hashed or builder is None:
        raise IntegrityError("A share kept here is shorter than its size on disk.")
    builder.digest()
    return [(found[leaf], builder.proof(leaf)) for leaf in leaves]


UPLOAD_IDLE = 600.0  # seconds before an abandoned upload gives its room back
STALE_TEMP = 24 * 3600.0  # seconds before a temporary file no upload owns is deleted
SWEEP_EVERY = 3600.0  # seconds between two looks for such files, made by some request


@dataclass
class _Upload:
    path: str
    reserved: int
    checker: erasure.ShareChecker
    written: int = 0
    touched: float = field(default_factory=time.monotonic)


def _storage_error(exc: OSError) -> StorageError:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        # Read by the owner (over the wire, under the friend's name) and in this node's log.
        return StorageError(
            "No room: the disk is full where the share was to be kept, so it was not "
            "stored. Free some space there; nothing was half-written."
        )
    return StorageError(f"Could not store a friend's share: {exc.strerror}.")


def check_same_version(kept: bytes | memoryview, share: bytes | memoryview) -> None:
    """OtherVersionKept unless the share kept (``kept``: its start at least) is of the
    format version that ``share`` (or its first piece) names. Their other bytes then
    match too: they follow from the record, whose id names its content."""
    if len(kept) > 4 and len(share) > 4 and kept[4] != share[4]:
        raise OtherVersionKept(
            f"A share of format version {kept[4]} is kept under that key already; "
            f"this one is version {share[4]}."
        )


def _same_version(path: str, share: bytes | memoryview) -> None:
    """``check_same_version`` against the share kept at ``path``."""
    try:
        with open(path, "rb") as f:
            kept = f.read(5)
    except OSError:
        return  # gone meanwhile: the sender finds out on its next request
    check_same_version(kept, share)


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_atomically(folder: str, name: str, data: bytes | memoryview) -> None:
    os.makedirs(folder, exist_ok=True)
    temporary = os.path.join(folder, f"{_TMP}{name}.{os.getpid()}.{threading.get_ident()}")
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, os.path.join(folder, name))
        _fsync_dir(folder)
    except OSError as exc:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise _storage_error(exc) from exc


class SharePool:
    """Shares kept for friends, under ``root``; ``quota(owner_id)`` gives each owner's quota."""

    def __init__(self, root: str, quota: Callable[[bytes], int]) -> None:
        self._root = root
        self._quota = quota
        self._lock = threading.Lock()  # usage accounting and head compare-and-swap
        self._usage: dict[bytes, int] = {}
        self._uploads: dict[tuple[bytes, ShareKey], _Upload] = {}
        os.makedirs(root, exist_ok=True)
        self._clean()
        self._next_sweep = time.monotonic() + SWEEP_EVERY

    def _clean(self) -> None:
        """Remove writes a crash interrupted, and pools dropped but not yet deleted."""
        for name in os.listdir(self._root):
            if name.startswith(_TMP):
                shutil.rmtree(os.path.join(self._root, name), ignore_errors=True)
        for folder, _, names in os.walk(self._root):
            for name in names:
                if name.startswith(_TMP):
                    os.unlink(os.path.join(folder, name))

    def _owner_dir(self, owner_id: bytes) -> str:
        return os.path.join(self._root, owner_id.hex())

    def _share_path(self, owner_id: bytes, key: ShareKey) -> tuple[str, str]:
        rid = key.record_id.hex()
        return os.path.join(self._owner_dir(owner_id), "shares", rid[:2]), f"{rid}.{key.index}"

    def _used_locked(self, owner_id: bytes) -> int:
        if owner_id not in self._usage:
            self._usage[owner_id] = stored_for(self._root, owner_id)
        return self._usage[owner_id]

    def used(self, owner_id: bytes) -> int:
        self._sweep_if_due()
        with self._lock:
            self._expire_uploads()  # an owner asking its room is not told of abandoned ones
            return self._used_locked(owner_id)

    def put(self, owner_id: bytes, key: ShareKey, share: bytes | memoryview) -> None:
        info = erasure.parse_share(share)  # well formed, and its own hash matches
        if info.record_id != key.record_id or info.index != key.index:
            raise IntegrityError("The share does not match the record and index it was sent as.")
        folder, name = self._share_path(owner_id, key)
        path = os.path.join(folder, name)
        if os.path.exists(path):
            _same_version(path, share)  # then the same bytes: a record's id names its content
            return
        quota = self._quota(owner_id)
        self._sweep_if_due()
        with self._lock:  # reserve the room first, so concurrent puts cannot overshoot
            self._expire_uploads()
            used = self._used_locked(owner_id)
            if used + len(share) > quota:
                raise StorageError(
                    f"No room left: this friend gives you {quota} bytes and {used} are used."
                )
            self._usage[owner_id] = used + len(share)
        try:
            _write_atomically(folder, name, share)
        except BaseException:
            with self._lock:
                self._usage[owner_id] -= len(share)
            raise

    def put_part(
        self, owner_id: bytes, key: ShareKey, offset: int, reserve: int, last: bool,
        data: bytes | memoryview,
    ) -> bool:  # fmt: skip
        """Write a piece of a share too large for one message; False once the share is kept
        here already (the sender stops). The first piece reserves ``reserve`` bytes of the
        quota, so a share that would not fit is refused before anything is written; the last
        checks the whole share (as ``put`` does) and renames it into place."""
        folder, name = self._share_path(owner_id, key)
        path = os.path.join(folder, name)
        if os.path.exists(path):
            if offset == 0:
                _same_version(path, data)
            return False
        upload = (owner_id, key)
        if offset == 0:
            self._sweep_if_due()
        with self._lock:
            self._expire_uploads()
            pending = self._uploads.get(upload)
            if offset == 0:
                if pending is not None:
                    self._drop_upload(upload)
                used = self._used_locked(owner_id)
                quota = self._quota(owner_id)
                if used + reserve > quota:
                    raise StorageError(
                        f"No room left: this friend gives you {quota} bytes and {used} are used."
                    )
                self._usage[owner_id] = used + reserve
                os.makedirs(folder, exist_ok=True)
                path = os.path.join(folder, f"{_TMP}{name}.{os.getpid()}.{id(self)}")
                pending = _Upload(path, reserve, erasure.ShareChecker())
                self._uploads[upload] = pending
            elif pending is None or pending.written != offset:
                raise IntegrityError(f"A share piece at offset {offset} does not follow on.")
            if pending.written + len(data) > pending.reserved:
                self._drop_upload(upload)
                raise IntegrityError("A share grew past the room it reserved.")
            pending.written += len(data)
            pending.touched = time.monotonic()
        try:
            with open(pending.path, "ab") as f:
                f.write(data)
                if last:
                    f.flush()
                    os.fsync(f.fileno())
            pending.checker.feed(data)
            if last:
                info = pending.checker.finish()
                if info.record_id != key.record_id or info.index != key.index:
                    raise IntegrityError("The share does not match its record and index.")
                os.replace(pending.path, os.path.join(folder, name))
                _fsync_dir(folder)
        except BaseException as exc:
            with self._lock:
                self._drop_upload(upload)
            if isinstance(exc, OSError):
                raise _storage_error(exc) from exc
            raise
        if last:
            with self._lock:  # the reservation becomes the share's real size
                self._uploads.pop(upload, None)
                self._usage[owner_id] -= pending.reserved - pending.written
        return True

    def _drop_upload(self, upload: tuple[bytes, ShareKey]) -> None:
        pending = self._uploads.pop(upload, None)
        if pending is not None:
            self._usage[upload[0]] -= pending.reserved
            with contextlib.suppress(FileNotFoundError):
                os.unlink(pending.path)

    def _expire_uploads(self) -> None:
        """Uploads abandoned by a sender that went away give their room back."""
        now = time.monotonic()
        for upload in [u for u, p in self._uploads.items() if now - p.touched > UPLOAD_IDLE]:
            self._drop_upload(upload)

    def reclaim_temporaries(self) -> int:
        """Delete temporary files that no upload in progress owns and that are older than
        STALE_TEMP: left by a write that died without the node (a worker thread killed, a
        disk error while cleaning up). A write in progress is seconds old, so the age keeps
        it safe; uploads in progress are known by path. The number of files deleted."""
        with self._lock:
            live = {pending.path for pending in self._uploads.values()}
        cutoff = time.time() - STALE_TEMP
        deleted = 0
        for folder, _, names in os.walk(self._root):
            for name in names:
                path = os.path.join(folder, name)
                if not name.startswith(_TMP) or path in live:
                    continue
                with contextlib.suppress(OSError):  # gone already, or not ours to judge
                    if os.stat(path).st_mtime < cutoff:
                        os.unlink(path)
                        deleted += 1
        return deleted

    def _sweep_if_due(self) -> None:
        """At most once per SWEEP_EVERY, on whichever request comes: the walk costs what
        the start-up one does, so it is not made per request."""
        with self._lock:
            now = time.monotonic()
            if now < self._next_sweep:
                return
            self._next_sweep = now + SWEEP_EVERY
        self.reclaim_temporaries()

    def get_range(self, owner_id: bytes, key: ShareKey, offset: int, length: int) -> bytes:
        folder, name = self._share_path(owner_id, key)
        try:
            with open(os.path.join(folder, name), "rb") as f:
                f.seek(offset)
                return f.read(length)
        except FileNotFoundError:
            raise PeerError(
                f"No share {key.index} of record {key.record_id.hex()[:12]} is kept here."
            ) from None

    def get(self, owner_id: bytes, key: ShareKey) -> bytes:
        folder, name = self._share_path(owner_id, key)
        try:
            with open(os.path.join(folder, name), "rb") as f:
                return f.read()
        except FileNotFoundError:
            raise PeerError(
                f"No share {key.index} of record {key.record_id.hex()[:12]} is kept here."
            ) from None

    def prove(self, owner_id: bytes, key: ShareKey, nonce: bytes) -> bytes:
        return prove_answer(nonce, self.get(owner_id, key))

    def prove_blocks(
        self, owner_id: bytes, key: ShareKey, blocks: list[int]
    ) -> list[tuple[bytes, list[bytes]]]:
        folder, name = self._share_path(owner_id, key)
        try:
            with open(os.path.join(folder, name), "rb") as f:
                return block_proofs(f.read, os.fstat(f.fileno()).st_size, blocks)
        except FileNotFoundError:
            raise PeerError(
                f"No share {key.index} of record {key.record_id.hex()[:12]} is kept here."
            ) from None

    def remove(self, owner_id: bytes, key: ShareKey) -> None:
        folder, name = self._share_path(owner_id, key)
        path = os.path.join(folder, name)
        try:
            size = os.path.getsize(path)
            os.unlink(path)
        except FileNotFoundError:
            return
        with self._lock:
            if owner_id in self._usage:
                self._usage[owner_id] -= size

    def list(self, owner_id: bytes) -> frozenset[ShareKey]:
        keys = set()
        for _, _, names in os.walk(os.path.join(self._owner_dir(owner_id), "shares")):
            for name in names:
                rid, _, index = name.partition(".")
                if not name.startswith(_TMP) and len(rid) == 64 and index.isdigit():
                    keys.add(ShareKey(bytes.fromhex(rid), int(index)))
        return frozenset(keys)

    def stat(self, owner_id: bytes) -> Usage:
        return Usage(self.used(owner_id), self._quota(owner_id))

    def get_head(self, owner_id: bytes) -> bytes | None:
        try:
            with open(os.path.join(self._owner_dir(owner_id), "head"), "rb") as f:
                return f.read()
        except FileNotFoundError:
            return None

    def put_head(self, owner_id: bytes, data: bytes) -> None:
        """Store a head signed by ``owner_id`` only if its sequence number is higher."""
        new = head.verify_head(data, owner_id)
        with self._lock:
            current = self.get_head(owner_id)
            if current is not None:
                old = head.verify_head(current, owner_id)
                if new.seq <= old.seq:
                    raise IntegrityError(
                        f"Head {new.seq} would replace head {old.seq}: refused (no rollback)."
                    )
            _write_atomically(self._owner_dir(owner_id), "head", data)

    def owners(self) -> list[bytes]:
        return [bytes.fromhex(n) for n in os.listdir(self._root) if len(n) == 64]

    def drop_owner(self, owner_id: bytes) -> int:
        """Delete everything kept for ``owner_id`` (no longer a friend); the bytes freed.
        The folder is renamed aside under the lock, so usage and the disk agree at once,
        and deleted after; a leftover from a crash is deleted at the next start."""
        folder = self._owner_dir(owner_id)
        trash = os.path.join(self._root, f"{_TMP}dropped-{owner_id.hex()}")
        with self._lock:
            freed = self._used_locked(owner_id)
            for upload in [u for u in self._uploads if u[0] == owner_id]:
                self._uploads.pop(upload)
            self._usage.pop(owner_id, None)
            with contextlib.suppress(FileNotFoundError):
                os.replace(folder, trash)
        shutil.rmtree(trash, ignore_errors=True)
        return freed


def stored_for(root: str, owner_id: bytes) -> int:
    """Bytes of whole shares kept for ``owner_id`` in the pool at ``root``, read from disk
    without opening the pool (which a running node owns)."""
    shares = os.path.join(root, owner_id.hex(), "shares")
    return sum(
        os.path.getsize(os.path.join(folder, name))
        for folder, _, names in os.walk(shares)
        for name in names
        if not name.startswith(_TMP)
    )
