"""SSH host keys: made once per node by ssh-keygen, kept 0600, reused, different per node."""

from __future__ import annotations

import stat
import subprocess
import threading
from pathlib import Path

from corral import pki
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


def test_every_node_has_its_own_key_of_each_type_sshd_loads(inv: Inventory, paths: Paths) -> None:
    need_tool("ssh-keygen")
    files = OverlayRenderer(paths).render(inv, "n1", ["ssh"]).files
    other = OverlayRenderer(paths).render(inv, "n2", ["ssh"]).files
    for key_type, header in (("ecdsa", b"ecdsa-sha2-nistp256 "), ("rsa", b"ssh-rsa ")):
        path = f"/etc/ssh/ssh_host_{key_type}_key"
        assert files[path].mode == 0o600
        assert files[path + ".pub"].data.startswith(header)
        assert files[path].data != other[path].data


def test_an_older_home_with_only_ed25519_keys_gains_the_others_and_keeps_its_own(
    paths: Paths,
) -> None:
    need_tool("ssh-keygen")
    old = HostKeyStore(paths.home / "keys", types=("ed25519",)).keys("n1")
    now = HostKeyStore(paths.home / "keys").keys("n1")
    assert [k.type for k in now] == ["ed25519", "ecdsa", "rsa"]
    assert now[0] == old[0]


def test_machine_id_is_made_once_per_node_and_kept_private(inv: Inventory, paths: Paths) -> None:
    need_tool("ssh-keygen")
    first = OverlayRenderer(paths).render(inv, "n1", ["machine-id"]).files["/etc/machine-id"]
    again = OverlayRenderer(paths).render(inv, "n1", ["machine-id"]).files["/etc/machine-id"]
    other = OverlayRenderer(paths).render(inv, "n2", ["machine-id"]).files["/etc/machine-id"]
    assert first == again and first.data != other.data
    value = first.data.decode()
    assert len(value) == 33 and value.endswith("\n") and int(value, 16) > 0
    assert first.mode == 0o444
    kept = paths.home / "keys" / "n1" / "machine-id"
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600


def test_with_the_cluster_ssh_ca_each_host_key_gets_a_certificate_that_sshd_presents(
    inv: Inventory, paths: Paths, tmp_path: Path
) -> None:
    need_tool("ssh-keygen")
    keys = pki.Pki(paths.pki)
    pki.ensure(keys)
    files = OverlayRenderer(paths).render(inv, "n1", ["ssh"]).files
    cert = files[KEY + "-cert.pub"]
    assert cert.mode == 0o644
    (tmp_path / "cert.pub").write_bytes(cert.data)
    shown = subprocess.run(
        ["ssh-keygen", "-L", "-f", str(tmp_path / "cert.pub")],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert "ssh-ed25519-cert-v01@openssh.com host certificate" in shown
    principals = shown.split("Principals:")[1].split("Critical Options:")[0].split()
    assert principals == ["n1", "n1.demo.example", "10.77.0.11", "10.78.0.11"]  # every address
    ca_fingerprint = subprocess.run(
        ["ssh-keygen", "-l", "-f", str(keys.ssh_ca_pub)], capture_output=True, text=True, check=True
    ).stdout.split()[1]
    assert f"Signing CA: ED25519 {ca_fingerprint}" in shown
    # the certificate is of this node's own host key
    public_fp = subprocess.run(
        ["ssh-keygen", "-l", "-f", "-"], input=files[KEY + ".pub"].data.decode(),
        capture_output=True, text=True, check=True,
    ).stdout.split()[1]  # fmt: skip
    assert f"Public key: ED25519-CERT {public_fp}" in shown
    conf = files["/etc/ssh/sshd_config.d/corral-host-certificates.conf"].data.decode()
    assert f"HostCertificate {KEY}-cert.pub" in conf


def test_without_the_ssh_ca_no_certificate_is_rendered(inv: Inventory, paths: Paths) -> None:
    need_tool("ssh-keygen")
    files = OverlayRenderer(paths).render(inv, "n1", ["ssh"]).files
    assert KEY + "-cert.pub" not in files
    assert not [f for f in files if "sshd_config.d" in f]
