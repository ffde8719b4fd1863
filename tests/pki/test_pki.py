"""The cluster's keys: private halves 0600, a server certificate that OpenSSL accepts for
the server's addresses, re-issued when an address is new, never when nothing changed."""

from __future__ import annotations

import stat
import subprocess
from pathlib import Path

from corral import pki
from tests.conftest import need_tool


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_init_keys_are_private_and_made_once(tmp_path: Path) -> None:
    keys = pki.Pki(tmp_path / "pki")
    made = pki.ensure(keys)
    assert keys.ca_key in made and keys.signing_key in made and keys.ssh_ca_key in made
    for secret in (keys.ca_key, keys.signing_key, keys.ssh_ca_key):
        assert mode(secret) == 0o600, secret
    assert mode(keys.root) == 0o700
    before = keys.ca_cert.read_bytes()
    assert pki.ensure(keys) == []
    assert keys.ca_cert.read_bytes() == before


def openssl_verify(keys: pki.Pki, ip: str) -> subprocess.CompletedProcess[str]:
    argv = ["openssl", "verify", "-CAfile", str(keys.ca_cert), "-verify_ip", ip]
    return subprocess.run(
        [*argv, str(keys.server_cert)], capture_output=True, text=True, check=False
    )


def test_the_server_certificate_is_good_for_its_addresses_only(tmp_path: Path) -> None:
    need_tool("openssl")
    keys = pki.Pki(tmp_path / "pki")
    pki.ensure(keys)
    assert pki.server_certificate(keys, ["10.77.0.1"])
    assert mode(keys.server_key) == 0o600
    assert openssl_verify(keys, "10.77.0.1").returncode == 0
    refused = openssl_verify(keys, "10.77.0.2")
    assert refused.returncode != 0 and "mismatch" in refused.stdout + refused.stderr
    # nothing new: the same certificate; a new address: re-issued, the old one kept
    first = keys.server_cert.read_bytes()
    assert not pki.server_certificate(keys, ["10.77.0.1"])
    assert keys.server_cert.read_bytes() == first
    assert pki.server_certificate(keys, ["10.88.0.1"])
    assert openssl_verify(keys, "10.88.0.1").returncode == 0
    assert openssl_verify(keys, "10.77.0.1").returncode == 0


def test_another_clusters_ca_does_not_vouch_for_this_server(tmp_path: Path) -> None:
    need_tool("openssl")
    keys, other = pki.Pki(tmp_path / "a"), pki.Pki(tmp_path / "b")
    pki.ensure(keys)
    pki.ensure(other)
    pki.server_certificate(keys, ["10.77.0.1"])
    argv = ["openssl", "verify", "-CAfile", str(other.ca_cert), str(keys.server_cert)]
    assert subprocess.run(argv, capture_output=True, check=False).returncode != 0


def test_the_known_hosts_line_names_the_ssh_ca(tmp_path: Path) -> None:
    keys = pki.Pki(tmp_path / "pki")
    pki.ensure(keys)
    line = pki.known_hosts_line(keys)
    assert line.startswith("@cert-authority * ssh-ed25519 ")
    assert keys.ssh_ca_pub.read_text().split()[:2] == line.split()[2:4]
