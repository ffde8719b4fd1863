"""The administrator's SSH key pair, and the server's known_hosts for the cluster.

`corral init` creates the pair (or takes one with `--ssh-key`) under
`$CORRAL_HOME/ssh/` (directory 0700, private key 0600); the `authorized-keys`
overlay puts its public half in root's authorized_keys on every node, which
the service-mode rescue shell uses too. `corral ssh` logs in with it and
checks host keys against `known_hosts`, written from the nodes' overlay host
keys, so a first login needs no prompt and a changed host key is refused.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterable
from pathlib import Path

from corral.config import Paths
from corral.overlays.errors import OverlayError

KEY_TYPE = "ed25519"


def public_key_path(paths: Paths) -> Path:
    return paths.admin_ssh_key.with_name(paths.admin_ssh_key.name + ".pub")


def admin_public_keys(paths: Paths) -> tuple[str, ...]:
    """The admin's public key line (none before `corral init`)."""
    try:
        text = public_key_path(paths).read_text()
    except FileNotFoundError:
        return ()
    return tuple(line.strip() for line in text.splitlines() if line.strip())


def _ssh_keygen(argv: list[str], what: str) -> str:
    try:
        proc = subprocess.run(
            ["ssh-keygen", *argv],
            check=False,
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
        )
    except FileNotFoundError:
        raise OverlayError("ssh-keygen is not installed (Debian: openssh-client)") from None
    if proc.returncode != 0:
        raise OverlayError(f"{what}: {proc.stderr.strip() or 'ssh-keygen failed'}")
    return proc.stdout


def _write_private(path: Path, data: bytes, mode: int) -> None:
    """Write `data` to `path` atomically, never readable by others on the way."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def public_key_of(private: Path) -> str:
    """The public key of a private key file: from ssh-keygen -y, else FILE.pub beside it."""
    if not private.is_file():
        raise OverlayError(f"{private}: no such file (give the private key of the pair)")
    beside = private.with_name(private.name + ".pub")
    try:
        line = _ssh_keygen(["-y", "-P", "", "-f", str(private)], f"{private}").strip()
    except OverlayError:
        if not beside.is_file():
            raise OverlayError(
                f"{private} is not an unencrypted SSH private key and {beside.name} is not "
                "beside it: give a key pair without a passphrase, or put its .pub next to it"
            ) from None
        line = beside.read_text().strip()
    if not line.startswith(("ssh-", "ecdsa-", "sk-")):
        raise OverlayError(f"{private}: the public key does not look like an SSH key")
    return line


def set_admin_key(paths: Paths, private: Path) -> str:
    """Make the key pair at `private` the admin's (copied into CORRAL_HOME); its public key."""
    public = public_key_of(private)
    paths.ssh.mkdir(parents=True, exist_ok=True, mode=0o700)
    _write_private(paths.admin_ssh_key, private.read_bytes(), 0o600)
    _write_private(public_key_path(paths), (public + "\n").encode(), 0o644)
    return public


def new_admin_key(paths: Paths) -> str:
    """Generate a fresh ed25519 pair for the admin (replacing any earlier one)."""
    paths.ssh.mkdir(parents=True, exist_ok=True, mode=0o700)
    with tempfile.TemporaryDirectory(dir=paths.ssh, prefix=".new-") as tmp:
        key = Path(tmp) / "key"
        comment = f"corral-admin@{paths.home}"
        _ssh_keygen(["-q", "-t", KEY_TYPE, "-N", "", "-C", comment, "-f", str(key)], "ssh-keygen")
        return set_admin_key(paths, key)


def ensure_admin_key(paths: Paths, private: Path | None = None) -> tuple[str, bool]:
    """The admin's public key; made (or taken from `private`) if missing. (key, changed)."""
    if private is not None:
        return set_admin_key(paths, private), True
    existing = admin_public_keys(paths)
    if existing and paths.admin_ssh_key.is_file():
        return existing[0], False
    return new_admin_key(paths), True


def write_known_hosts(paths: Paths, lines: Iterable[str]) -> Path:
    """Write the cluster's known_hosts (from the overlay host keys) for `corral ssh`."""
    text = "# Host keys of the cluster's nodes, written by corral.\n"
    text += "".join(f"{line}\n" for line in lines)
    _write_private(paths.known_hosts, text.encode(), 0o644)
    return paths.known_hosts


def login_options(key: str, known_hosts: str) -> list[str]:
    """ssh options for logging in to nodes as corral does: only this key, only corral's
    known_hosts (strictly checked), no prompts. `corral ssh`, `image grab` and the lab use them."""
    return [
        "-i",
        key,
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        f"UserKnownHostsFile={known_hosts}",
        "-o",
        "GlobalKnownHostsFile=/dev/null",
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        "UpdateHostKeys=no",
    ]


def ssh_argv(key: str, known_hosts: str, address: str, command: tuple[str, ...]) -> list[str]:
    """The ssh command line: only the admin key, only corral's known_hosts, no prompts."""
    return [
        "ssh",
        *login_options(key, known_hosts),
        "-o",
        "ConnectTimeout=15",
        "-l",
        "root",
        "--",
        address,
        *command,
    ]
