"""`corral image grab`: the rsync command line, and a grab of a local tree through the same path."""

from __future__ import annotations

from pathlib import Path

from corral.app import Corral
from corral.images import api, rsync
from corral.inventory import ops


def test_argv_over_ssh_has_excludes_and_remote_root(tmp_path: Path) -> None:
    ssh = rsync.ssh_command(2222, Path("/keys/id ed25519"))
    argv = rsync.rsync_argv(rsync.remote_source("10.0.0.5"), tmp_path, rsync.GRAB_EXCLUDES, ssh)
    assert argv[:5] == ["rsync", "-aHAXS", "--numeric-ids", "--one-file-system", "--info=progress2"]
    assert "--exclude=/proc/*" in argv and "--exclude=/etc/ssh/ssh_host_*" in argv
    assert "--exclude=/etc/machine-id" in argv
    e = argv.index("-e")
    assert argv[e + 1] == (
        "ssh -o BatchMode=yes -o ConnectTimeout=10 -p 2222 -i '/keys/id ed25519'"
    )
    assert argv[-2:] == ["root@10.0.0.5:/", f"{tmp_path}/"]


def test_node_name_resolves_to_its_reserved_address(app: Corral) -> None:
    app.change(lambda inv: ops.add_network(inv, {"name": "prov", "cidr": "10.7.0.0/24"}))
    app.change(
        lambda inv: ops.add_nodes(inv, ["n1"], {"networks": ["prov"]}, mac=None, ip="10.7.0.11")
    )
    assert api.node_address(app, "n1") == "10.7.0.11"
    assert api.node_address(app, "other.example") == "other.example"


def test_local_grab_applies_the_default_excludes(app: Corral, tmp_path: Path) -> None:
    node = tmp_path / "node"
    for d in ("proc/1", "sys/class", "dev", "run/lock", "tmp", "etc/ssh", "usr/bin"):
        (node / d).mkdir(parents=True)
    (node / "proc/1/stat").write_text("1 (init)")
    (node / "tmp/junk").write_text("x")
    (node / "etc/machine-id").write_text("0123456789abcdef\n")
    (node / "etc/ssh/ssh_host_ed25519_key").write_text("secret")
    (node / "etc/ssh/sshd_config").write_text("PermitRootLogin yes\n")
    (node / "usr/bin/tool").write_text("#!/bin/sh\n")
    image = api.grab_image(app, str(node), "grabbed", ssh=None)
    root = api.rootfs(app, "grabbed")
    assert (root / "usr/bin/tool").is_file() and (root / "etc/ssh/sshd_config").is_file()
    assert not (root / "etc/ssh/ssh_host_ed25519_key").exists()
    assert (root / "etc/machine-id").read_text() == ""
    assert list((root / "proc").iterdir()) == [] and list((root / "tmp").iterdir()) == []
    assert image.source == f"grab:{node}"


def test_grab_of_an_inventory_node_leaves_out_its_overlay_output(app: Corral) -> None:
    from corral.cli.image import grab_excludes
    from corral.overlays.render import render_node

    app.change(lambda inv: ops.add_network(inv, {"name": "prov", "cidr": "10.7.0.0/24"}))
    app.change(
        lambda inv: ops.add_nodes(inv, ["n1"], {"networks": ["prov"]}, mac=None, ip="10.7.0.11")
    )
    excludes = grab_excludes(app, "n1")
    rendered = set(render_node(app, app.settings.paths, "n1").files)
    assert {"/etc/hostname", "/usr/lib/corral/corral-agent"} <= rendered <= set(excludes)
    assert "/etc/corral/*" in excludes  # the node credential the initramfs wrote
    assert set(rsync.GRAB_EXCLUDES) <= set(excludes)
    assert grab_excludes(app, "other.example") == rsync.GRAB_EXCLUDES  # not ours: no overlay
    assert grab_excludes(app, "n1", defaults=False) == ()
