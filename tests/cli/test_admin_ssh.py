"""The admin's SSH key: made by `corral init`, changed by `corral admin ssh-key`, trusted by
root on every node through the overlay; `corral ssh` checks host keys strictly."""

from __future__ import annotations

import stat
import subprocess
from pathlib import Path

from corral.config import Paths
from corral.overlays.adminkey import ssh_argv
from corral.overlays.render import OverlayRenderer
from tests.cli.conftest import Run
from tests.overlays.inventory import inventory


def keygen(path: Path, passphrase: str = "") -> str:
    argv = ["ssh-keygen", "-q", "-t", "ed25519", "-N", passphrase, "-C", "me@test", "-f", str(path)]
    subprocess.run(argv, check=True)
    return path.with_name(path.name + ".pub").read_text().strip()


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_init_makes_the_admin_key_once_and_keeps_it_private(corral: Run, home: Path) -> None:
    first = corral("init")
    assert first.code == 0, first.err
    paths = Paths(home)
    assert mode(paths.admin_ssh_key) == 0o600
    assert mode(paths.ssh) == 0o700
    public = (paths.ssh / "admin_key.pub").read_text().strip()
    assert public.startswith("ssh-ed25519 ") and public in first.out
    private = paths.admin_ssh_key.read_bytes()
    assert corral("init").code == 0
    assert paths.admin_ssh_key.read_bytes() == private  # idempotent: the same pair


def test_init_takes_a_given_key_and_admin_ssh_key_changes_it(
    corral: Run, home: Path, tmp_path: Path
) -> None:
    mine = keygen(tmp_path / "mine")
    assert corral("init", "--ssh-key", str(tmp_path / "mine")).code == 0
    shown = corral("admin", "ssh-key", "show", "-o", "json")
    assert mine.split()[:2] == shown.out.split('"public_key": "')[1].split()[:2]
    other = keygen(tmp_path / "other")
    assert corral("admin", "ssh-key", "set", str(tmp_path / "other")).code == 0
    assert (Paths(home).ssh / "admin_key.pub").read_text().split()[:2] == other.split()[:2]
    assert mode(Paths(home).admin_ssh_key) == 0o600


def test_an_encrypted_key_without_its_public_half_is_refused(
    corral: Run, home: Path, tmp_path: Path
) -> None:
    keygen(tmp_path / "locked", passphrase="secret words")
    (tmp_path / "locked.pub").unlink()
    result = corral("admin", "ssh-key", "set", str(tmp_path / "locked"))
    assert result.code == 1
    assert "put its .pub next to it" in result.error_line
    assert not Paths(home).admin_ssh_key.exists()


def test_root_on_every_node_trusts_the_admin_key_and_the_cluster_keys(
    corral: Run, home: Path
) -> None:
    assert corral("init").code == 0
    paths = Paths(home)
    admin = (paths.ssh / "admin_key.pub").read_text().strip()
    inv = inventory()
    files = OverlayRenderer(paths).render(inv, "n1").files
    keys = files["/root/.ssh/authorized_keys"]
    assert keys.mode == 0o600
    lines = keys.data.decode().splitlines()
    assert lines[0] == admin
    assert lines[1:] == list(inv.settings.ssh_authorized_keys)


def test_corral_ssh_checks_host_keys_strictly_with_the_clusters_known_hosts() -> None:
    argv = ssh_argv("/h/ssh/admin_key", "/h/ssh/known_hosts", "10.0.0.5", ("uname", "-n"))
    assert argv[:1] == ["ssh"]
    options = [argv[i + 1] for i, a in enumerate(argv) if a == "-o"]
    assert "StrictHostKeyChecking=yes" in options
    assert "UserKnownHostsFile=/h/ssh/known_hosts" in options
    assert "IdentitiesOnly=yes" in options
    assert argv[-4:] == ["--", "10.0.0.5", "uname", "-n"]


def test_corral_ssh_without_an_admin_key_says_to_run_init(corral: Run) -> None:
    result = corral("ssh", "n001")
    assert result.code == 1
    assert "corral init" in result.err
