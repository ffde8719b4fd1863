"""Cluster users: rendered from the inventory, merged into a node's own passwd/group/shadow
by the real corral-users script, never replacing the image's system users."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from corral.config import Paths
from corral.inventory.index import Inventory
from corral.inventory.models import Cluster, ClusterSettings
from corral.overlays.render import OverlayRenderer, RenderedOverlay
from corral.overlays.sources import BUILTIN_ROOT
from tests.overlays.inventory import CLUSTER

SCRIPT = BUILTIN_ROOT / "users/usr/lib/corral/corral-users"
ALICE_KEY = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGx2cFo0L3VmQm9ZcWxYb2Q4aW1xUkZ0N2ZkS2JzR3hW alice@laptop"
)
# the start of a Debian image's files, as debootstrap leaves them
DEBIAN_PASSWD = """root:x:0:0:root:/root:/bin/bash
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
munge:x:101:103::/nonexistent:/usr/sbin/nologin
slurm:x:64030:64030::/nonexistent:/usr/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
"""
DEBIAN_GROUP = "root:x:0:\nshadow:x:42:\nmunge:x:103:\nusers:x:100:\n"
DEBIAN_SHADOW = "root:*:19000:0:99999:7:::\nmunge:!:19000::::::\n"


def users_inventory(users: list[dict[str, object]]) -> Inventory:
    data = copy.deepcopy(CLUSTER)
    data["cluster"]["users"] = users
    return Inventory.from_cluster(Cluster.model_validate(data))


USERS = [
    {"name": "alice", "uid": 2001, "ssh_authorized_keys": [ALICE_KEY], "comment": "Alice"},
    {"name": "bob", "uid": 2002, "gid": 3000, "group": "hpc", "shell": "/bin/sh"},
]


def render(paths: Paths, users: list[dict[str, object]] = USERS) -> RenderedOverlay:
    return OverlayRenderer(paths).render(users_inventory(users), "n1", ["users"])


def test_users_render_to_passwd_group_shadow_and_their_ssh_files(paths: Paths) -> None:
    files = render(paths).files
    assert files["/etc/corral/users/passwd"].data.decode().splitlines() == [
        "alice:x:2001:2001:Alice:/home/alice:/bin/bash",
        "bob:x:2002:3000::/home/bob:/bin/sh",
    ]
    assert files["/etc/corral/users/group"].data == b"alice:x:2001:\nhpc:x:3000:\n"
    assert files["/etc/corral/users/shadow"].mode == 0o600
    keys = files["/home/alice/.ssh/authorized_keys"]
    assert (keys.mode, keys.owner) == (0o600, "alice:alice")
    own = files["/home/alice/.ssh/id_ed25519.pub"].data.decode()
    assert keys.data.decode().splitlines() == [ALICE_KEY, own.strip()]
    assert own.startswith("ssh-ed25519 ") and own.strip().endswith("alice@demo")
    private = files["/home/bob/.ssh/id_ed25519"]
    assert (private.mode, private.owner) == (0o600, "bob:hpc")
    assert b"PRIVATE KEY" in private.data
    # the same pair for every node, kept by the server
    again = OverlayRenderer(paths).render(users_inventory(USERS), "n3", ["users"])
    assert again.files["/home/bob/.ssh/id_ed25519"].data == private.data


def test_no_users_no_files_but_the_merge_script_and_unit(paths: Paths) -> None:
    assert not [p for p in render(paths, []).files if p.startswith(("/etc/corral", "/home"))]


@pytest.mark.parametrize(
    ("users", "error"),
    [
        ([{"name": "daemon2", "uid": 1}], "greater than or equal to 1000"),
        ([{"name": "a", "uid": 2000}, {"name": "a", "uid": 2001}], "user name a"),
        ([{"name": "Bad Name", "uid": 2000}], "pattern"),
        ([{"name": "x", "uid": 2000, "shell": "/bin/sh:x"}], "pattern"),
    ],
)
def test_bad_users_are_refused_with_a_reason(users: list[dict[str, object]], error: str) -> None:
    with pytest.raises(ValidationError, match=error):
        ClusterSettings.model_validate({"users": users})


def node_root(tmp_path: Path, rendered: RenderedOverlay) -> Path:
    root = tmp_path / "node"
    (root / "etc").mkdir(parents=True)
    (root / "etc/passwd").write_text(DEBIAN_PASSWD)
    (root / "etc/group").write_text(DEBIAN_GROUP)
    (root / "etc/shadow").write_text(DEBIAN_SHADOW)
    (root / "etc/shadow").chmod(0o640)
    write_overlay(root, rendered)
    return root


def write_overlay(root: Path, rendered: RenderedOverlay) -> None:
    for path, file in rendered.files.items():
        target = root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(file.data)
        target.chmod(file.mode)
    for gone in ("passwd", "group", "shadow"):
        if f"/etc/corral/users/{gone}" not in rendered.files:
            (root / "etc/corral/users" / gone).unlink(missing_ok=True)


def merge(root: Path) -> str:
    argv = ["/usr/bin/python3", "-I", "-S", str(SCRIPT), "--root", str(root)]
    done = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=30)
    return done.stderr


def test_merge_keeps_the_images_users_and_adds_the_clusters(paths: Paths, tmp_path: Path) -> None:
    root = node_root(tmp_path, render(paths))
    merge(root)
    passwd = (root / "etc/passwd").read_text()
    assert passwd.startswith(DEBIAN_PASSWD)  # the image's users, untouched and first
    assert passwd.removeprefix(DEBIAN_PASSWD).splitlines() == [
        "alice:x:2001:2001:Alice:/home/alice:/bin/bash",
        "bob:x:2002:3000::/home/bob:/bin/sh",
    ]
    assert (root / "etc/group").read_text() == DEBIAN_GROUP + "alice:x:2001:\nhpc:x:3000:\n"
    shadow = root / "etc/shadow"
    assert shadow.read_text().startswith(DEBIAN_SHADOW)
    assert shadow.stat().st_mode & 0o777 == 0o640  # the file keeps its mode
    home = root / "home/bob/.ssh"
    assert (home.stat().st_uid, home.stat().st_gid) == (2002, 3000)
    assert (root / "home/bob").stat().st_uid == 2002  # made root's when .ssh was written
    assert (home / "id_ed25519").stat().st_uid == 2002

    # again: nothing changes; then bob leaves the inventory and leaves the node
    merge(root)
    assert (root / "etc/passwd").read_text() == passwd
    write_overlay(root, render(paths, USERS[:1]))
    merge(root)
    assert "bob" not in (root / "etc/passwd").read_text()
    assert "hpc" not in (root / "etc/group").read_text()
    assert (root / "etc/passwd").read_text().startswith(DEBIAN_PASSWD)


def test_a_cluster_user_never_replaces_a_system_user(paths: Paths, tmp_path: Path) -> None:
    root = node_root(tmp_path, render(paths, [{"name": "munge", "uid": 2500}]))
    warning = merge(root)
    assert "munge (uid 2500) clashes with a system user: skipped" in warning
    assert (root / "etc/passwd").read_text() == DEBIAN_PASSWD


def test_the_merge_script_passes_ruff_for_python_3_9() -> None:
    ruff = Path(sys.executable).parent / "ruff"
    for argv in (["check", "--target-version", "py39"], ["format", "--check"]):
        done = subprocess.run(
            [str(ruff), *argv, "--stdin-filename", "corral_users.py", "-"],
            input=SCRIPT.read_text(), capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
