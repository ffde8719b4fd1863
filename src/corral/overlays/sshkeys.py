"""SSH host keys and machine-id: generated once per node, kept, and reused.

A node keeps its host keys across reboots and reinstalls, so clients that
trust it once keep trusting it. It has one of each type sshd loads by
default (ed25519, ECDSA, RSA): an image holds none, so none is shared by
all the nodes booting it. Its /etc/machine-id is made and kept here too
(journald, dbus and DHCP client ids read it; a shared one makes nodes
indistinguishable). The keys live under `$CORRAL_HOME/keys/<node>/`
(directory 0700, files 0600). A node's keys are created in a scratch directory
and renamed into place, so two concurrent renders never see half a key pair:
the loser of the race throws its pair away and uses the winner's.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from corral.overlays.errors import OverlayError
from corral.pki import Pki, sign_host_key

KEY_TYPES: tuple[str, ...] = ("ed25519", "ecdsa", "rsa")
MACHINE_ID = "machine-id"


@dataclass(frozen=True)
class HostKey:
    """One host key pair of a node, as written to /etc/ssh/."""

    type: str
    private: str
    public: str

    @property
    def filename(self) -> str:
        return f"ssh_host_{self.type}_key"

    @property
    def certificate_filename(self) -> str:
        return f"ssh_host_{self.type}_key-cert.pub"

    @property
    def public_key(self) -> str:
        """The public key without its comment: `ssh-ed25519 AAAA...`."""
        return " ".join(self.public.split()[:2])


class HostKeyStore:
    """The host keys of every node, one directory per node under `root`.

    With the cluster's keys (`pki`, made by `corral init`), each host key also
    gets a host certificate signed by the SSH CA, so users trust one
    `@cert-authority` line instead of every node's key.
    """

    def __init__(
        self, root: Path, types: tuple[str, ...] = KEY_TYPES, pki: Pki | None = None
    ) -> None:
        self.root = root
        self.types = types
        self.pki = pki

    def certificate(self, key: HostKey, node: str, principals: Iterable[str]) -> str | None:
        """A host certificate for `key`, valid for the node's names and addresses (None: no CA)."""
        if self.pki is None or not self.pki.ssh_ca_key.is_file():
            return None
        return sign_host_key(self.pki, key.public_key, [node, *principals], f"corral:{node}")

    def keys(self, node: str) -> tuple[HostKey, ...]:
        """The node's host keys, generated on first use."""
        folder = self.root / node
        if not self._complete(folder):
            self._generate(node, folder)
        return tuple(self._read(folder, t) for t in self.types)

    def ensure(self, nodes: Iterable[str]) -> None:
        """Generate the keys of every node that lacks them, several ssh-keygen at once."""
        missing = [n for n in nodes if not self._complete(self.root / n)]
        if not missing:
            return
        workers = min(len(missing), 2 * (os.cpu_count() or 1), 16)
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(self.keys, missing))

    def machine_id(self, node: str) -> str:
        """The node's machine-id (32 hex digits), made on first use and kept."""
        path = self.root / node / MACHINE_ID
        if not path.is_file():
            self.keys(node)  # the node's directory, made atomically with its keys
            scratch = path.with_name(f".{MACHINE_ID}-{secrets.token_hex(4)}")
            scratch.write_text(secrets.token_hex(16) + "\n")
            scratch.chmod(0o600)
            try:
                os.link(scratch, path)  # never replaces: a concurrent render's id wins
            except FileExistsError:
                pass
            finally:
                scratch.unlink()
        return path.read_text().strip()

    def public_keys(self, node: str) -> tuple[str, ...]:
        """The node's public keys without comments, generated on first use."""
        return tuple(k.public_key for k in self.keys(node))

    def _complete(self, folder: Path) -> bool:
        return all((folder / f"ssh_host_{t}_key.pub").is_file() for t in self.types)

    def _read(self, folder: Path, key_type: str) -> HostKey:
        base = folder / f"ssh_host_{key_type}_key"
        return HostKey(key_type, base.read_text(), base.with_suffix(".pub").read_text())

    def _generate(self, node: str, folder: Path) -> None:
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        scratch = Path(tempfile.mkdtemp(prefix=f".{node}-", dir=self.root))
        try:
            for key_type in self.types:
                keygen(key_type, scratch / f"ssh_host_{key_type}_key", f"root@{node}")
            for item in scratch.iterdir():
                item.chmod(0o600)
            if folder.exists():  # an incomplete earlier attempt, or a new key type
                _merge_missing(scratch, folder)
            else:
                _rename_or_lose(scratch, folder)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)


def keygen(key_type: str, path: Path, comment: str) -> None:
    """An unencrypted key pair at `path` (and `path`.pub) by ssh-keygen; OverlayError if not."""
    argv = ["ssh-keygen", "-q", "-t", key_type, "-N", "", "-C", comment, "-f", str(path)]
    try:
        subprocess.run(argv, check=True, capture_output=True, stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        raise OverlayError("ssh-keygen is not installed (Debian: openssh-client)") from None
    except subprocess.CalledProcessError as exc:
        reason = exc.stderr.decode(errors="replace").strip()
        raise OverlayError(f"ssh-keygen -t {key_type} failed for {comment}: {reason}") from None


def _rename_or_lose(scratch: Path, folder: Path) -> None:
    """Move the new pair into place unless another render got there first."""
    try:
        os.rename(scratch, folder)
    except OSError:
        if not folder.is_dir():
            raise


def _merge_missing(scratch: Path, folder: Path) -> None:
    """Add key types the node lacks, never replacing a key it already has."""
    for item in sorted(scratch.iterdir()):
        if item.name.endswith(".pub"):
            continue
        pub = item.with_suffix(".pub")
        if not (folder / pub.name).exists():
            os.replace(item, folder / item.name)
            os.replace(pub, folder / pub.name)
