"""The ssh driver against a real SSH server: dropbear on a loopback port.

dropbear runs as root in its own mount namespace where a scratch directory is
mounted over /root, so the key it trusts (root's authorized_keys) and the
files the "power" commands leave are the test's, and the machine's own /root
is never touched.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from corral.inventory.models import PowerSettings
from corral.power import FinalError, PowerState, Runtime, make_driver
from corral.power.base import PowerDriver
from tests.conftest import need, need_tool
from tests.power.peers import free_port, stop, wait_until


@dataclass
class SshPeer:
    port: int
    home: Path  # what the server sees as /root
    client_key: Path
    known_hosts: Path


def keygen(path: Path) -> str:
    argv = ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "test", "-f", str(path)]
    subprocess.run(argv, check=True)
    return path.with_name(path.name + ".pub").read_text().strip()


def listening(port: int) -> bool:
    probe = subprocess.run(
        ["ssh-keyscan", "-T", "2", "-p", str(port), "127.0.0.1"], capture_output=True, check=False
    )
    return b"ssh-ed25519" in probe.stdout


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[SshPeer]:
    need_tool("dropbear", "dropbearconvert", "ssh", "ssh-keygen", "unshare")
    need(os.geteuid() == 0, "dropbear must run as root to log in as root")
    home = tmp_path / "root"
    (home / ".ssh").mkdir(parents=True, mode=0o700)
    home.chmod(0o700)
    public = keygen(tmp_path / "client")
    (home / ".ssh" / "authorized_keys").write_text(public + "\n")
    (home / ".ssh" / "authorized_keys").chmod(0o600)
    host_public = keygen(tmp_path / "host")
    subprocess.run(
        ["dropbearconvert", "openssh", "dropbear", str(tmp_path / "host"), str(tmp_path / "hk")],
        check=True,
        capture_output=True,
    )
    port = free_port()
    known = tmp_path / "known_hosts"
    known.write_text(f"[127.0.0.1]:{port} {host_public}\n")
    serve = f'dropbear -F -E -s -r "{tmp_path}/hk" -p 127.0.0.1:{port}'
    script = f'mount --bind "{home}" /root && exec {serve}'
    log = (tmp_path / "dropbear.log").open("wb")
    proc = subprocess.Popen(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    log.close()
    try:
        wait_until(lambda: listening(port), 20, "dropbear")
        yield SshPeer(port, home, tmp_path / "client", known)
    finally:
        stop(proc)


def driver(peer: SshPeer, **options: str) -> PowerDriver:
    settings = {
        "port": str(peer.port),
        "identity_file": str(peer.client_key),
        "known_hosts": str(peer.known_hosts),
        "poweroff_command": "touch /root/powered-off",
        "reboot_command": "touch /root/rebooted",
        **options,
    }
    power = PowerSettings(driver="ssh", address="127.0.0.1", options=settings)
    return make_driver("n1", power, Runtime(attempts=1, poll_interval=0.05))


def test_status_reset_and_off_run_on_the_node_over_ssh(sshd: SshPeer) -> None:
    d = driver(sshd)
    assert asyncio.run(d.status()) == PowerState.ON
    asyncio.run(d.reset())
    assert (sshd.home / "rebooted").exists()
    asyncio.run(d.off())
    assert (sshd.home / "powered-off").exists()


def test_a_host_key_not_in_known_hosts_is_refused(sshd: SshPeer, tmp_path: Path) -> None:
    other = tmp_path / "other_known_hosts"
    other.write_text(f"[127.0.0.1]:{sshd.port} {keygen(tmp_path / 'impostor')}\n")
    d = driver(sshd, known_hosts=str(other))
    assert asyncio.run(d.status()) == PowerState.UNKNOWN
    with pytest.raises(FinalError, match="host key is not the one in"):
        asyncio.run(d.reset())
    assert not (sshd.home / "rebooted").exists()


def test_a_failing_command_is_a_final_error(sshd: SshPeer) -> None:
    d = driver(sshd, reboot_command="false")
    with pytest.raises(FinalError, match="reboot_command exited 1"):
        asyncio.run(d.reset())


def test_nothing_listening_is_unknown_not_on() -> None:
    power = PowerSettings(
        driver="ssh", address="127.0.0.1", options={"port": str(free_port()), "timeout": "2"}
    )
    d = make_driver("n1", power, Runtime(attempts=1, poll_interval=0.05))
    assert asyncio.run(d.status()) == PowerState.UNKNOWN
