"""API keys: minted once, shown once, stored only as SHA-256 digests in a JSON file.

A key is ``ssq_<id>_<secret>`` with a 256-bit random secret. Because the secret is random and long,
one SHA-256 is enough to store it safely (a slow password hash protects guessable secrets, which
these are not) and lets every request be checked with one dictionary lookup. The file holds, per
key, its id, name, role (``client``: events and reads; ``admin``: also the admin routes), digest,
creation and revocation times; never the key itself.

The service re-reads the file when its modification time changes, so ``shopseq serve keys
revoke`` takes effect on a running service within a second, without a restart.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from shopseq.artifacts import atomic_write_json, read_json
from shopseq.errors import ConfigError, InputError

__all__ = ["ApiKey", "KeyStore", "Role", "digest"]

Role = Literal["client", "admin"]
_FILE_VERSION = 1


def digest(key: str) -> str:
    """Return the stored form of a key: its SHA-256 in hex.

    Args:
        key: The key as a client sends it.

    Returns:
        64 hex characters.
    """
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class ApiKey:
    """One key as stored (no secret).

    Attributes:
        key_id: Public id (also inside the key, so logs can name a key without holding it).
        name: What the key is for.
        role: ``client`` or ``admin``.
        sha256: Digest of the whole key.
        created_at: When it was minted (UTC, ISO 8601).
        revoked_at: When it was revoked (``None``: active).
    """

    key_id: str
    name: str
    role: Role
    sha256: str
    created_at: str
    revoked_at: str | None = None

    @property
    def active(self) -> bool:
        """Whether the key is accepted."""
        return self.revoked_at is None


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class KeyStore:
    """The key file, read and written atomically.

    Args:
        path: The JSON file (created by the first :meth:`add`).
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._mtime: float | None = None
        self._checked = 0.0
        self._by_digest: dict[str, ApiKey] = {}

    def records(self) -> list[ApiKey]:
        """Return every key in the file, active or revoked, oldest first."""
        if not self.path.is_file():
            return []
        try:
            data: dict[str, Any] = read_json(self.path)
        except (OSError, ValueError) as err:
            raise ConfigError(f"{self.path}: cannot read the API-key file: {err}") from err
        if data.get("version") != _FILE_VERSION or not isinstance(data.get("keys"), list):
            raise ConfigError(
                f"{self.path}: not an API-key file of version {_FILE_VERSION}; "
                "create one with shopseq serve keys add"
            )
        return [ApiKey(**entry) for entry in data["keys"]]

    def _write(self, keys: list[ApiKey]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(
            self.path,
            {
                "version": _FILE_VERSION,
                "keys": [
                    {
                        "key_id": k.key_id,
                        "name": k.name,
                        "role": k.role,
                        "sha256": k.sha256,
                        "created_at": k.created_at,
                        "revoked_at": k.revoked_at,
                    }
                    for k in keys
                ],
            },
        )
        os.chmod(self.path, 0o600)

    def add(self, name: str, role: Role = "client") -> tuple[str, ApiKey]:
        """Mint a key, store its digest and return the key (the only time it exists in full).

        Args:
            name: What the key is for (shown by ``keys list``).
            role: ``client`` or ``admin``.

        Returns:
            ``(key, record)``.

        Raises:
            InputError: If the name is empty or the role unknown.
        """
        if not name.strip():
            raise InputError("a key needs a name saying what it is for, e.g. 'shop-frontend'")
        if role not in ("client", "admin"):
            raise InputError(f"role must be 'client' or 'admin'; got {role!r}")
        keys = self.records()
        taken = {k.key_id for k in keys}
        key_id = secrets.token_hex(4)
        while key_id in taken:
            key_id = secrets.token_hex(4)
        key = f"ssq_{key_id}_{secrets.token_urlsafe(32)}"
        record = ApiKey(key_id, name.strip(), role, digest(key), _now())
        self._write([*keys, record])
        return key, record

    def revoke(self, key_id: str) -> ApiKey:
        """Revoke a key by its id (the service refuses it from its next check of the file).

        Args:
            key_id: The key's id (``keys list``).

        Returns:
            The revoked record.

        Raises:
            InputError: If no key has that id.
        """
        keys = self.records()
        for n, key in enumerate(keys):
            if key.key_id == key_id:
                revoked = ApiKey(**{**_fields(key), "revoked_at": key.revoked_at or _now()})
                keys[n] = revoked
                self._write(keys)
                return revoked
        known = ", ".join(k.key_id for k in keys) or "none"
        raise InputError(f"no API key with id {key_id!r} in {self.path}; known ids: {known}")

    def check(self, key: str) -> ApiKey | None:
        """Return the active record of a presented key, or ``None`` if it is not accepted.

        Args:
            key: The key as the client sent it.

        Returns:
            Its record, or ``None`` (unknown or revoked).
        """
        self._refresh()
        return self._by_digest.get(digest(key))

    def _refresh(self) -> None:
        now = time.monotonic()
        if now - self._checked < 1.0 and self._mtime is not None:
            return
        with self._lock:
            self._checked = now
            try:
                mtime = self.path.stat().st_mtime
            except FileNotFoundError:
                self._by_digest, self._mtime = {}, 0.0
                return
            if mtime != self._mtime:
                self._by_digest = {k.sha256: k for k in self.records() if k.active}
                self._mtime = mtime


def _fields(key: ApiKey) -> dict[str, Any]:
    return {name: getattr(key, name) for name in ApiKey.__slots__}
