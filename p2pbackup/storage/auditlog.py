"""What the owner remembers of auditing each friend (``audits.json`` in the profile).

One record per friend (by its friend key): when it was last audited, what that audit
found, and where the audit stands in the current pass over its shares (a secret
order and a cursor, so every share is proved once per pass). Written whole to a
temporary file, synced and renamed. The file is a cache of upkeep, not a backup: a
file of another schema version, or unreadable, is set aside and audits start afresh
(each friend's next audit begins a new pass).

Layout (JSON)::

    {"version": 1,
     "friends": {"<friend key>": {"last": unix time | null, "proved": int, "read": int,
                                  "unproven": int,
                                  "missing": ["<record id hex>:<index>", ...],
                                  "damaged": [...], "seed": "<hex>", "cursor": float,
                                  "credit": float, "old_credit": float,
                                  "passes": int}}}
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass, field, fields

from p2pbackup.storage.diskerrors import storage_error

log = logging.getLogger(__name__)

VERSION = 1
FILE = "audits.json"


@dataclass
class FriendAudit:
    last: float | None = None  # Unix time the last audit of this friend ended
    proved: int = 0  # shares proved by the last audit (a block proof, a pair or a full read)
    read: int = 0  # of those, read in full and hash-checked
    unproven: int = 0  # shares the last audit had nothing to prove by (see engine/audit.py)
    missing: list[str] = field(default_factory=list)  # "<record id hex>:<index>"
    damaged: list[str] = field(default_factory=list)
    seed: str = ""  # this pass's secret order of the friend's shares (hex); "" before any
    cursor: float = 0.0  # how far through that order this pass is, 0..1
    credit: float = 0.0  # bytes that may be read in full (audit_read of the bytes proved)
    old_credit: float = 0.0  # bytes that may be read in full for shares nothing proves
    passes: int = 0  # passes over every share finished

    @classmethod
    def of(cls, data: dict) -> FriendAudit:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


class AuditLog:
    def __init__(self, path: str) -> None:
        self._path = path

    def load(self) -> dict[str, FriendAudit]:
        try:
            with open(self._path, encoding="utf-8") as f:
                data = json.load(f)
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.warning("the audit records could not be read (%s); audits start afresh", exc)
            return {}
        if not isinstance(data, dict) or data.get("version") != VERSION:
            log.warning("the audit records are of another version; audits start afresh")
            return {}
        try:
            return {key: FriendAudit.of(value) for key, value in data["friends"].items()}
        except (KeyError, TypeError, AttributeError) as exc:
            log.warning("the audit records are malformed (%s); audits start afresh", exc)
            return {}

    def save(self, records: dict[str, FriendAudit]) -> None:
        data = {"version": VERSION, "friends": {k: asdict(v) for k, v in records.items()}}
        temporary = self._path + ".tmp"
        try:
            with open(temporary, "w", encoding="utf-8") as f:
                json.dump(data, f, sort_keys=True)
                f.flush()
                os.fsync(f.fileno())
            os.replace(temporary, self._path)
        except OSError as exc:
            error = storage_error(exc)
            if error is None:
                raise
            raise error from exc
