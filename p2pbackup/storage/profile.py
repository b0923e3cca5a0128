"""A profile: everything one node keeps on disk, in one folder.

By default the platformdirs data folder of the user; ``--home DIR`` or
``P2PBACKUP_HOME`` puts a profile anywhere, so several nodes run on one
machine. Secrets are files of mode 0600 written atomically. A lock file
keeps a second node from opening the same profile.

    secret.key      the 32-byte recovery secret (the phrase is its words)
    node.key        this device's libp2p Ed25519 seed
    certificate     this device's certificate, signed by the owner key
    settings.json   name, listen addresses (the port is remembered), rendezvous
    catalog.sqlite  friends, quotas, and later the file index
    pool/           shares kept for friends
    node.lock       held while a node runs on this profile
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from typing import Any

from p2pbackup.errors import ConfigError

ENV_HOME = "P2PBACKUP_HOME"
NODE_SEED_SIZE = 32

if sys.platform == "win32":  # no flock: lock the file's first byte instead
    import msvcrt

    def _try_lock(fd: int) -> bool:
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True


def default_home() -> str:
    if home := os.environ.get(ENV_HOME):
        return home
    import platformdirs  # here: most commands name their profile, and it costs 10 ms

    return platformdirs.user_data_dir("p2pbackup", appauthor=False)


LOG_NAME = "p2pbackup.log"


def log_folder(home: str) -> str:
    """Where the profile's log goes: the platform's log folder for the default profile,
    ``<home>/logs`` for any other (cli/logs.py writes it, the app opens it)."""
    import platformdirs

    if os.path.abspath(home) == os.path.abspath(
        platformdirs.user_data_dir("p2pbackup", appauthor=False)
    ) and not os.environ.get(ENV_HOME):
        return platformdirs.user_log_dir("p2pbackup", appauthor=False)
    return os.path.join(home, "logs")


def write_private(path: str, data: bytes) -> None:
    """Write a file only the user can read, atomically."""
    temporary = f"{path}.tmp"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(temporary, path)


def node_seed(path: str) -> bytes:
    """The device's node key (a 32-byte Ed25519 seed) kept at ``path``, created with mode
    0600 the first time."""
    try:
        with open(path, "rb") as f:
            seed = f.read()
    except FileNotFoundError:
        seed = os.urandom(NODE_SEED_SIZE)  # the system's CSPRNG, as nacl.utils.random
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(seed)
            f.flush()
            os.fsync(f.fileno())
    if len(seed) != NODE_SEED_SIZE:
        raise ConfigError(f"The node key in {path} is damaged ({len(seed)} bytes, not 32).")
    return seed


@dataclass(frozen=True)
class Profile:
    home: str

    def path(self, name: str) -> str:
        return os.path.join(self.home, name)

    @property
    def exists(self) -> bool:
        return os.path.exists(self.path("secret.key"))

    def require(self) -> Profile:
        if not self.exists:
            raise ConfigError(
                f"No profile in {self.home}. Run 'p2pbackup init' first (or init --recover)."
            )
        return self

    def create(self, secret: bytes) -> None:
        if self.exists:
            raise ConfigError(f"A profile already exists in {self.home}; nothing was changed.")
        os.makedirs(self.home, mode=0o700, exist_ok=True)
        write_private(self.path("secret.key"), secret)

    def secret(self) -> bytes:
        with open(self.require().path("secret.key"), "rb") as f:
            secret = f.read()
        if len(secret) != 32:
            raise ConfigError(f"{self.path('secret.key')} is damaged; recover from your phrase.")
        return secret

    def settings(self) -> dict[str, Any]:
        try:
            with open(self.path("settings.json")) as f:
                return json.load(f)
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{self.path('settings.json')} cannot be read: {exc}") from exc

    def update_settings(self, **changes: Any) -> dict[str, Any]:
        settings = {**self.settings(), **changes}
        write_private(self.path("settings.json"), json.dumps(settings, indent=2).encode())
        return settings

    def lock(self) -> NodeLock:
        return NodeLock(self.path("node.lock"))


class NodeLock:
    """One node per profile: an exclusive, non-blocking lock held while the node runs."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._fd: int | None = None

    def __enter__(self) -> NodeLock:
        self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
        if not _try_lock(self._fd):
            os.close(self._fd)
            self._fd = None
            raise ConfigError(
                "Another p2pbackup node is already running on this profile. Stop it, or use "
                "another --home."
            ) from None
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
