"""SSH host keys: made once per node by ssh-keygen, kept 0600, reused, different per node."""

from __future__ import annotations

import stat
import subprocess
import threading
from pathlib import Path

from corral.config import Paths
from corral.inventory.index import Inventory
from corral.overlays.render import OverlayRenderer
from corral.overlays.sshkeys import HostKeyStore
from tests.conftest import need_tool

KEY = "/etc/ssh/ssh_host_ed25519_key"


def test_keys_are_generated_once_and_reused(inv: Inventory, paths: Paths) -> None:
    need_tool("ssh-keygen")
    first = OverlayRenderer(paths).render(inv, "n1", ["ssh"]).files
    again = OverlayRenderer(paths).render(inv, "n1", ["ssh"]).files  # a fresh process's view
    assert first[KEY] == again[KEY]
    assert first[KEY + ".pub"] == again[KEY + ".pub"]
    assert first[KEY].mode == 0o600
    assert first[KEY].data.startswith(b"-----BEGIN OPENSSH PRIVATE KEY-----\n")


def test_keys_are_stored_private(inv: Inventory, paths: Paths) -> None:
    need_tool("ssh-keygen")
    OverlayRenderer(paths).render(inv, "n1", ["ssh"])
    folder = paths.home / "keys" / "n1"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    for name in ("ssh_host_ed25519_key", "ssh_host_ed25519_key.pub"):
        assert stat.S_IMODE((folder / name).stat().st_mode) == 0o600


def test_keys_differ_per_node_and_match_their_private_key(inv: Inventory, paths: Paths) -> None:
    need_tool("ssh-keygen")
    renderer = OverlayRenderer(paths)
    pubs = {n: renderer.render(inv, n, ["ssh"]).files[KEY + ".pub"].data for n in inv.nodes}
    assert len(set(pubs.values())) == 3
    derived = subprocess.run(
        ["ssh-keygen", "-y", "-f", str(paths.home / "keys/n2/ssh_host_ed25519_key")],
        capture_output=True,
        check=True,
        text=True,
    ).stdout
    assert pubs["n2"].decode().split()[:2] == derived.split()[:2]


def test_known_hosts_lists_every_node_with_its_key(inv: Inventory, paths: Paths) -> None:
    need_tool("ssh-keygen")
    renderer = OverlayRenderer(paths)
    known = renderer.render(inv, "n1", ["ssh"]).files["/etc/ssh/ssh_known_hosts"].data.decode()
    for node in ("n2", "n3"):
        pub = renderer.render(inv, node, ["ssh"]).files[KEY + ".pub"].data.decode()
        key = " ".join(pub.split()[:2])
        assert any(
            line.startswith(f"{node},{node}.demo.example") and line.endswith(key)
            for line in known.splitlines()
        )
    assert "10.77.0.12 ssh-ed25519 " in known


def test_concurrent_first_renders_agree(tmp_path: Path) -> None:
    need_tool("ssh-keygen")
    store = HostKeyStore(tmp_path / "keys")
    seen: list[str] = []

    def grab() -> None:
        seen.append(store.keys("n1")[0].public)

    threads = [threading.Thread(target=grab) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(seen)) == 1
    assert sorted(p.name for p in (tmp_path / "keys").iterdir()) == ["n1"]
