"""A Debian 12 server image built by `corral image build` boots stateless as each node.

lab01 (BIOS) and lab02 (UEFI) boot the same image and come up as themselves:
hostname, address on the NIC with the inventory's MAC, resolver, machine-id and
SSH host keys from their own overlay; systemd reaches `running` (not degraded);
the downloaded archive is not left in RAM. lab03 has too little memory and
fails with the message that says so.
"""

from __future__ import annotations

import pytest

from corral.images.api import get_image
from corral.overlays.sshkeys import HostKeyStore
from tests.e2e.debian import BOOTED, IMAGE, DebianLab

pytestmark = [
    pytest.mark.netns,
    pytest.mark.vm,
    pytest.mark.slow,
    pytest.mark.timeout(3600),
]


def test_both_nodes_hand_over_and_systemd_reaches_running(debian_lab: DebianLab) -> None:
    assert debian_lab.report.finished == {"lab01": "booted", "lab02": "booted", "lab03": "failed"}
    for node in BOOTED:
        assert debian_lab.wait_for_ssh(node) == "running", debian_lab.ssh(
            node, "systemctl --failed --no-legend"
        ).stdout
    uefi = debian_lab.ssh("lab02", "test -d /sys/firmware/efi && echo uefi")
    assert uefi.stdout.strip() == "uefi"
    bios = debian_lab.ssh("lab01", "test -d /sys/firmware/efi || echo bios")
    assert bios.stdout.strip() == "bios"


@pytest.mark.parametrize("node", BOOTED)
def test_node_is_itself_hostname_address_resolver_machine_id(
    debian_lab: DebianLab, node: str
) -> None:
    debian_lab.wait_for_ssh(node)
    ip, mac = debian_lab.ip(node), debian_lab.mac(node)
    script = (
        "hostname; cat /etc/machine-id; "
        f"ip -o -4 addr show dev $(ip -o link | awk -F': ' '/{mac}/ {{print $2}}'); "
        "ip route show default; cat /etc/resolv.conf; networkctl list --no-legend"
    )
    done = debian_lab.ssh(node, script)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == node
    keys = HostKeyStore(debian_lab.corral.settings.paths.home / "keys")
    assert lines[1] == keys.machine_id(node)
    assert f"inet {ip}/24 " in done.stdout  # on the NIC with the inventory's MAC
    assert "default via 10.99.0.1 " in done.stdout
    assert "nameserver 10.99.0.1" in done.stdout and "search lab.corral" in done.stdout
    assert " configured" in done.stdout, done.stdout  # networkd manages the NIC


def test_machine_ids_differ_between_nodes(debian_lab: DebianLab) -> None:
    ids = {debian_lab.ssh(n, "cat /etc/machine-id").stdout.strip() for n in BOOTED}
    assert len(ids) == 2


@pytest.mark.parametrize("key_type", ["ed25519", "ecdsa", "rsa"])
def test_sshd_presents_the_overlay_host_key_of_each_type(
    debian_lab: DebianLab, key_type: str
) -> None:
    for node in BOOTED:
        debian_lab.wait_for_ssh(node)
        done = debian_lab.ssh(node, "true", key_type=key_type)
        assert done.returncode == 0, f"{node} {key_type}: {done.stderr}"


def test_root_is_a_sized_tmpfs_and_the_archive_is_not_left_in_ram(debian_lab: DebianLab) -> None:
    image = get_image(debian_lab.corral, IMAGE)
    assert image.artifacts is not None
    packed = image.artifacts.image.size
    for node in BOOTED:
        debian_lab.wait_for_ssh(node)
        done = debian_lab.ssh(
            node,
            "findmnt -n -o FSTYPE /; df -B1 --output=size,used / | tail -n 1; "
            "awk '/^(MemTotal|Shmem):/ {print $2 * 1024}' /proc/meminfo",
        )
        fstype, sizes, mem_total, shmem = done.stdout.splitlines()
        size, used = map(int, sizes.split())
        assert fstype == "tmpfs"
        assert size > int(mem_total) // 2  # sized from RAM and image, not tmpfs's default half
        # Shmem counts every tmpfs page: the root, /run, /dev/shm; a left-over archive
        # in the initramfs' /run would add the whole packed image on top of the root
        assert int(shmem) - used < packed, (shmem, used, packed)


def test_node_with_too_little_memory_fails_saying_so(debian_lab: DebianLab) -> None:
    # it fails, reboots and fails again until the fixture powers it off: read its events
    events = debian_lab.actions.events(0, 10000)
    failures = [
        e["data"]
        for e in events
        if e["node"] == debian_lab.small and e["data"]["state"] == "failed"
    ]
    assert failures, [e["data"] for e in events if e["node"] == debian_lab.small]
    error = failures[0]["error"]
    assert error.startswith("not enough memory for image debian: this node has "), error
    assert "give the node more memory or boot it stateful" in error
    states = [e["data"]["state"] for e in events if e["node"] == debian_lab.small]
    assert "downloading" not in states  # refused before fetching anything
    log = debian_lab.serial(debian_lab.small)
    assert "FAILED: not enough memory for image debian" in log
    assert "Kernel panic" not in log
