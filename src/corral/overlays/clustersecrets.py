"""Cluster secrets: made once per cluster, kept by the server, shipped only in overlays.

Slurm's nodes trust each other through one shared munge key, k3s agents join
with the server's token, and cluster users log in from node to node with
their own SSH key pair. Each is generated on first use and kept under
`$CORRAL_HOME/secrets/` (directory 0700, files 0600), like the nodes' host
keys under `keys/`; a reinstalled server keeps them with its home.

Templates see them as `cluster.secrets` (computed when a template reads
them), and rendered overlays reach a node only through its credential
(`/api/v1/boot/self/...`) or the admin token. Nothing else reads this
directory: not `corral export`, not the API listings, not the logs; the one
exception is the API's token check, which accepts the Slurm power token
(below) as an `operator` token named `slurm-power`.

A file is written under a scratch name and linked into place, never replacing
one that is there: two concurrent renders agree on the winner's secret.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from corral.overlays.errors import OverlayError
from corral.overlays.sshkeys import keygen

MUNGE_KEY_BYTES = 512  # munge wants at least 32; `mungekey` makes 1024 bits by default
K3S_TOKEN_BYTES = 32
# Slurm's ResumeProgram/SuspendProgram on the controller call the power API with it
SLURM_POWER_TOKEN = "slurm-power.token"  # noqa: S105 (a file name)
SLURM_POWER_NAME = "slurm-power"
TOKEN_PREFIX = "corral_"  # noqa: S105 (as corral's API tokens: scanners know the prefix)
_USER_NAME = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")


@dataclass(frozen=True)
class UserKey:
    """A cluster user's own SSH key pair, for passwordless SSH between the nodes."""

    user: str
    private: str
    public: str

    @property
    def public_key(self) -> str:
        """`ssh-ed25519 AAAA... user@cluster` as one line."""
        return self.public.strip()


class ClusterSecrets:
    """The secrets of one cluster, as files under `root` (0700; each file 0600)."""

    def __init__(self, root: Path, cluster: str = "corral") -> None:
        self.root = root
        self.cluster = cluster

    @property
    def munge_key(self) -> str:
        """The munge key as hex text (munge hashes the whole file; any bytes do)."""
        return self._value("munge.key", lambda: secrets.token_hex(MUNGE_KEY_BYTES))

    @property
    def k3s_token(self) -> str:
        """The k3s join token shared by the server and its agents."""
        return self._value("k3s.token", lambda: secrets.token_hex(K3S_TOKEN_BYTES))

    @property
    def slurm_power_token(self) -> str:
        """The API token (operator role) Slurm's power saving on the controller calls with."""
        return self._value(SLURM_POWER_TOKEN, lambda: TOKEN_PREFIX + secrets.token_urlsafe(32))

    def existing(self, name: str) -> str | None:
        """A secret's value if it has been made, without making it."""
        try:
            return (self.root / name).read_text().strip() or None
        except (FileNotFoundError, NotADirectoryError):
            return None

    def user_key(self, user: str) -> UserKey:
        """`user`'s ed25519 key pair, generated on first use."""
        if not _USER_NAME.match(user):
            raise OverlayError(f"no SSH key for {user!r}: not a valid user name")
        folder = self.root / "users" / user
        if not folder.is_dir():
            self._keygen(user, folder)
        base = folder / "id_ed25519"
        return UserKey(user, base.read_text(), base.with_suffix(".pub").read_text())

    def _value(self, name: str, make: Callable[[], str]) -> str:
        path = self.root / name
        if not path.is_file():
            self._place(path, make() + "\n")
        return path.read_text().strip()

    def _scratch_dir(self, folder: Path) -> Path:
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.root, 0o700)
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        return Path(tempfile.mkdtemp(prefix=".new-", dir=folder))

    def _place(self, path: Path, text: str) -> None:
        scratch = self._scratch_dir(path.parent)
        try:
            tmp = scratch / path.name
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(text)
            _link_or_lose(tmp, path)
        finally:
            _remove(scratch)

    def _keygen(self, user: str, folder: Path) -> None:
        """A pair made in a scratch directory renamed to `folder`: never half a pair."""
        scratch = self._scratch_dir(folder.parent)
        try:
            keygen("ed25519", scratch / "id_ed25519", f"{user}@{self.cluster}")
            for item in scratch.iterdir():
                item.chmod(0o600)
            try:
                os.rename(scratch, folder)
            except OSError:
                if not folder.is_dir():
                    raise
        finally:
            if scratch.exists():
                _remove(scratch)


def _link_or_lose(tmp: Path, path: Path) -> None:
    """Put `tmp` at `path` unless a concurrent writer got there first (theirs stays)."""
    with contextlib.suppress(FileExistsError):
        os.link(tmp, path)


def _remove(folder: Path) -> None:
    for item in folder.iterdir():
        item.unlink()
    folder.rmdir()
