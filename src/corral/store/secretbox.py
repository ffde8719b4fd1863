"""Secrets at rest: BMC passwords are sealed with a key kept apart from the database.

A copy of `corral.db` (or a PostgreSQL dump) alone no longer gives away every
BMC password: the rows hold AES-256-GCM ciphertexts (the `cryptography`
library; a fresh 96-bit nonce per value), and the key lives in its own 0600 file,
`$CORRAL_HOME/secret.key` by default or `CORRAL_SECRET_KEY_FILE`. A backup
needs both; keep the key out of the database's backups (or point
`CORRAL_SECRET_KEY_FILE` outside CORRAL_HOME) and the database copies stay
sealed. Losing the key loses the stored BMC passwords, nothing else: set them
again.

Values written before this existed are plain text; they are read as they are
and sealed by the schema migration and on every write.

AES-GCM rather than Fernet: opening is about ten times faster (a 10,000-node
inventory with a password per node loads in about 0.1 s more, not 1.3 s), and
the format is as simple: `aesgcm:` + base64(nonce + ciphertext + tag).
"""

from __future__ import annotations

import base64
import contextlib
import os
import tempfile
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from corral.store.errors import StoreError
from corral.store.files import make_private

if TYPE_CHECKING:  # cryptography is imported on first use: most commands open no secret
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

PREFIX = "aesgcm:"
NONCE = 12
CONTEXT = b"corral secret v1"  # associated data: a ciphertext made for something else fails


class SecretBox:
    """Seals and opens secret strings with the key in `key_file` (made on first seal)."""

    def __init__(self, key_file: Path) -> None:
        self.key_file = key_file
        self._opened: dict[str, str] = {}

    def ensure_key(self) -> Path:
        """Make the key now if there is none (`corral init`), so it can be backed up."""
        self._cipher(create=True)
        return self.key_file

    @staticmethod
    def is_sealed(value: str) -> bool:
        return value.startswith(PREFIX)

    def seal(self, value: str) -> str:
        if self.is_sealed(value):
            return value
        nonce = os.urandom(NONCE)
        sealed = self._cipher(create=True).encrypt(nonce, value.encode(), CONTEXT)
        return PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode()

    def open(self, value: str) -> str:
        """The clear text of `value` (plain text from before sealing passes through).

        :raises StoreError: the key is missing or is not the one that sealed it.
        """
        if not self.is_sealed(value):
            return value
        if value not in self._opened:  # a server opens the same rows again and again
            from cryptography.exceptions import InvalidTag

            cipher = self._cipher(create=False)
            try:
                raw = base64.urlsafe_b64decode(value.removeprefix(PREFIX))
                text = cipher.decrypt(raw[:NONCE], raw[NONCE:], CONTEXT).decode()
            except (InvalidTag, ValueError):
                raise StoreError(
                    f"a stored secret does not open with the key in {self.key_file}: "
                    "restore the key this database was written with"
                ) from None
            self._opened[value] = text
        return self._opened[value]

    def _cipher(self, create: bool) -> AESGCM:
        if not self.key_file.exists():
            if not create:
                raise StoreError(
                    f"the database holds sealed secrets but the key {self.key_file} is missing:"
                    " restore it from your backup (or set CORRAL_SECRET_KEY_FILE)"
                )
            write_key(self.key_file)
        return self._loaded

    @cached_property
    def _loaded(self) -> AESGCM:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        make_private(self.key_file)
        try:
            return AESGCM(base64.urlsafe_b64decode(self.key_file.read_bytes().strip()))
        except (ValueError, OSError) as exc:
            raise StoreError(f"cannot use the secret key {self.key_file}: {exc}") from None


def write_key(path: Path) -> None:
    """A new key at `path`, mode 0600; if another process got there first, theirs stays."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    fd, tmp = tempfile.mkstemp(prefix=".secret-", dir=path.parent)  # mode 0600
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(base64.urlsafe_b64encode(AESGCM.generate_key(256)) + b"\n")
            fh.flush()
            os.fsync(fh.fileno())
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)  # atomic, and never replaces a key already there
    finally:
        os.unlink(tmp)
