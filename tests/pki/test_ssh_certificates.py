"""Host certificates from the cluster's SSH CA: a real sshd presents one, and a real ssh
client with nothing but the `@cert-authority` line in known_hosts accepts the host."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import pytest

from corral import pki
from corral.overlays.sshkeys import HostKeyStore
from tests.conftest import need_tool

SSHD = Path("/usr/sbin/sshd")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ssh_probe(known_hosts: Path, port: int, tmp: Path) -> str:
    """Connect; host verification happens before authentication, which then fails."""
    done = subprocess.run(
        [
            "ssh", "-F", "/dev/null", "-p", str(port), "-o", "BatchMode=yes",
            "-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={known_hosts}",
            "-o", "GlobalKnownHostsFile=/dev/null", "-o", "ConnectTimeout=10",
            "-o", "PreferredAuthentications=none", "-i", "/dev/null",
            "nobody@127.0.0.1", "true",
        ],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    return done.stderr


def start_sshd(tmp: Path, key: Path, cert: Path | None, port: int) -> subprocess.Popen[bytes]:
    config = tmp / "sshd_config"
    lines = [f"Port {port}", "ListenAddress 127.0.0.1", f"HostKey {key}", "UsePAM no",
             f"PidFile {tmp / 'sshd.pid'}", "StrictModes no"]  # fmt: skip
    if cert is not None:
        lines.append(f"HostCertificate {cert}")
    config.write_text("\n".join(lines) + "\n")
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation directory
    proc = subprocess.Popen([str(SSHD), "-D", "-e", "-f", str(config)], stderr=subprocess.PIPE)
    return proc


def wait_listening(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else b""
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise AssertionError("sshd did not listen")


@pytest.mark.parametrize("with_certificate", [True, False])
def test_one_cert_authority_line_trusts_a_node_that_presents_its_host_certificate(
    tmp_path: Path, with_certificate: bool
) -> None:
    if not SSHD.exists():
        pytest.skip("openssh-server is not installed")
    need_tool("ssh")
    keys = pki.Pki(tmp_path / "pki")
    pki.ensure(keys)
    store = HostKeyStore(tmp_path / "keys", pki=keys)
    host_key = store.keys("n001")[0]  # ed25519 (ecdsa and rsa follow)
    key_file = tmp_path / "keys" / "n001" / host_key.filename
    cert_file = tmp_path / "keys" / "n001" / host_key.certificate_filename
    cert = store.certificate(host_key, "n001", ["n001.cluster.test", "127.0.0.1"])
    assert cert is not None
    cert_file.write_text(cert + "\n")
    shown = subprocess.run(
        ["ssh-keygen", "-L", "-f", str(cert_file)], capture_output=True, text=True, check=True
    ).stdout
    assert "host certificate" in shown and "127.0.0.1" in shown
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(pki.known_hosts_line(keys) + "\n")
    port = free_port()
    proc = start_sshd(tmp_path, key_file, cert_file if with_certificate else None, port)
    try:
        wait_listening(port, proc)
        out = ssh_probe(known_hosts, port, tmp_path)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stderr:
            proc.stderr.close()
    if with_certificate:
        assert "Host key verification failed" not in out, out
        assert "Permission denied" in out, out
    else:  # the bare key is not in known_hosts: refused, as it must be
        assert "Host key verification failed" in out, out
