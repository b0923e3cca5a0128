"""The project's errors: one root, five families, messages written for people.

Every error carries a message a user can act on and an exit code for the CLI
(Borg's habit). Parsers raise these, never bare ValueError/struct.error, so a
malformed byte from a peer or a disk becomes a clear, catchable error.
"""

from __future__ import annotations


class P2PBackupError(Exception):
    """Something went wrong."""

    exit_code = 1

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or "").strip())

    @property
    def message(self) -> str:
        return str(self.args[0])


class IntegrityError(P2PBackupError):
    """Data failed verification: it was damaged or tampered with."""

    exit_code = 3


class FormatError(IntegrityError):
    """The bytes are not in a format this version understands."""


class PeerError(P2PBackupError):
    """A friend's node misbehaved or could not be reached."""

    exit_code = 4


class OtherVersionKept(PeerError):
    """The friend keeps this share already, written in another share format version."""


class NoBlockProofs(PeerError):
    """That share was stored before block proofs existed; it is checked another way."""


class StorageError(P2PBackupError):
    """The disk refused: it is full, read-only, or a file is missing."""

    exit_code = 5


class SourceChangedError(StorageError):
    """A file changed while it was being backed up; the next backup takes it."""


class PairingError(P2PBackupError):
    """Pairing with a friend failed."""

    exit_code = 6


class InviteNotHere(PairingError):
    """That invite code is unknown on that node, used up or expired."""


class InviteMismatch(PairingError):
    """The invite code does not match: mistyped, or tried by someone else. It is used up."""


class ConfigError(P2PBackupError):
    """The settings or the input given are not usable."""

    exit_code = 2


class PhraseError(ConfigError):
    """The recovery phrase is not valid."""


class PlacementError(ConfigError):
    """Friends do not have room to keep this data safe."""


class JobCancelled(P2PBackupError):
    """The job was cancelled."""

    exit_code = 130  # as a command stopped by Ctrl-C


class InternalError(P2PBackupError):
    """Internal error: a bug in p2pbackup. The log has the details."""

    @classmethod
    def see_log(cls, log_file: str | None) -> InternalError:
        """What the user is told of a bug: where its traceback went, never the bug itself
        dressed as their mistake (docs/decisions.md, "Errors")."""
        if log_file:
            return cls(f"internal error, see the log ({log_file})")
        return cls("internal error (a bug; with no log file, its details went to stderr)")
