"""Operating the running Debian nodes of the shared lab, as an administrator does.

On lab01 (BIOS) and lab02 (UEFI), booted stateless by the `debian_lab` fixture:
the lab profile's `post` script ran chrooted in Debian before switch_root;
the node agent reports `ready` with the node's facts; runtime overlays follow
the inventory (a new admin key, a new node in /etc/hosts) within 60 s;
`corral exec` and `corral ssh` run commands; `corral image grab` copies lab01
over real SSH into an image without lab01's own files, and that image boots
lab02 as lab02 after a reset sent by the `ssh` power driver to lab02's sshd.
lab03, too small to boot the image stateless, is then installed stateful on its
disk: it boots from that disk, and a file under /var survives a reboot.

The tests share one lab and run in file order (each waits for what it needs).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from corral.images import api
from corral.images.artifacts import pack_image
from corral.lab.lab import SERVER_URL
from corral.overlays.adminkey import admin_public_keys
from corral.overlays.sshkeys import HostKeyStore
from corral.power.run import Action
from tests.e2e.debian import BOOTED, DebianLab
from tests.e2e.polling import power, states_since, wait_for

pytestmark = [
    pytest.mark.netns,
    pytest.mark.vm,
    pytest.mark.slow,
    pytest.mark.timeout(3600),
]

GRABBED = "grabbed"
EXTRA_NODE, EXTRA_IP = "extra01", "10.99.0.77"


def states(lab: DebianLab, node: str) -> dict[str, str]:
    return {row["node"]: row["state"] for row in lab.actions.status([node])}


def wait_ready(lab: DebianLab, nodes: tuple[str, ...], timeout: float = 900) -> None:
    def all_ready() -> bool:
        rows = {r["node"]: r["state"] for r in lab.actions.status(list(nodes))}
        return all(rows[n] == "ready" for n in nodes)

    wait_for(f"{', '.join(nodes)} ready (agent heartbeats)", all_ready, timeout, every=3)


def seen_within(lab: DebianLab, node: str, command: str, text: str, since: float) -> float:
    """Seconds from `since` until `command`'s output on `node` holds `text` (60 s at most)."""
    deadline = since + 60
    while time.monotonic() < deadline:
        if text in lab.ssh(node, command, timeout=30).stdout:
            return time.monotonic() - since
        time.sleep(1)
    pytest.fail(f"{node}: {text!r} not in the output of {command!r} within 60 s")


@pytest.fixture(scope="module")
def admin_key(debian_lab: DebianLab) -> Path:
    """The admin key made with `corral admin ssh-key new`, once it is on both nodes."""
    wait_ready(debian_lab, BOOTED)
    made = debian_lab.cli("admin", "ssh-key", "new")
    assert made.returncode == 0, made.stderr
    paths = debian_lab.corral.settings.paths
    (public,) = admin_public_keys(paths)
    changed = time.monotonic()
    for node in BOOTED:  # authorized-keys is a runtime overlay: the agent brings the new key
        seen_within(debian_lab, node, "cat /root/.ssh/authorized_keys", public, changed)
    return paths.admin_ssh_key


def test_agents_report_ready_with_the_nodes_facts(debian_lab: DebianLab) -> None:
    wait_ready(debian_lab, BOOTED)
    for row in debian_lab.actions.facts(list(BOOTED)):
        node = row["node"]
        assert row["reported"] is not None, row
        assert row["cpus"] == 1  # the lab's VMs have one CPU
        assert 1200 < row["memory_mib"] <= 1536, row  # MemTotal of a 1536 MB VM
        macs = [nic["mac"] for nic in row["nics"]]
        assert macs == [debian_lab.mac(node)], row["nics"]


def test_the_post_script_ran_chrooted_in_debian_and_left_its_marker(debian_lab: DebianLab) -> None:
    for node in BOOTED:
        debian_lab.wait_for_ssh(node)
        marker = debian_lab.ssh(node, "cat /etc/corral-post-marker").stdout
        assert marker == f"post ran on {node} in debian 12\n"
        events = [
            e["data"]
            for e in debian_lab.actions.events(0, 100000)
            if e["kind"] == "script" and e["node"] == node
        ]
        assert [(e["script"], e["exit"], e["output"]) for e in events][:1] == [
            ("post", 0, "post-done\n")
        ]


def test_a_new_admin_key_reaches_the_running_nodes_and_corral_ssh_logs_in(
    debian_lab: DebianLab, admin_key: Path
) -> None:
    for node in BOOTED:
        # corral ssh: the admin key, host keys from corral's known_hosts, no prompt
        done = debian_lab.cli("ssh", node, "uname", "-n", in_lab=True)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == node


def test_a_node_added_to_the_inventory_is_in_etc_hosts_on_the_running_nodes_within_60_s(
    debian_lab: DebianLab,
) -> None:
    wait_ready(debian_lab, BOOTED)
    assert EXTRA_NODE not in debian_lab.ssh("lab01", "cat /etc/hosts").stdout
    debian_lab.actions.add_nodes([EXTRA_NODE], {"profiles": ["lab"]}, ip=EXTRA_IP)
    added = time.monotonic()
    try:
        took = {
            node: seen_within(debian_lab, node, "cat /etc/hosts", EXTRA_NODE, added)
            for node in BOOTED
        }
        hosts = debian_lab.ssh("lab02", "cat /etc/hosts").stdout
        assert any(line.split()[:1] == [EXTRA_IP] for line in hosts.splitlines()), hosts
        assert max(took.values()) <= 60, took
    finally:
        debian_lab.actions.delete_nodes([EXTRA_NODE])


def test_corral_exec_prints_each_nodes_output_and_fails_if_one_node_fails(
    debian_lab: DebianLab,
) -> None:
    wait_ready(debian_lab, BOOTED)
    done = debian_lab.cli("exec", "lab[01-02]", "-o", "json", "--", "uname", "-n")
    assert done.returncode == 0, done.stderr
    runs = {run["node"]: run for run in json.loads(done.stdout)["runs"]}
    assert {n: (r["exit_code"], r["stdout"]) for n, r in runs.items()} == {
        "lab01": (0, "lab01\n"),
        "lab02": (0, "lab02\n"),
    }
    table = debian_lab.cli("exec", "lab[01-02]", "--", "uname -n; test $(uname -n) = lab01")
    assert table.returncode == 1, table.stdout + table.stderr
    assert "lab01" in table.stdout and "lab02" in table.stdout  # each node's output
    assert "2 node(s): 1 ok, 1 failed (lab02)" in table.stderr


@pytest.fixture(scope="module")
def grabbed(debian_lab: DebianLab, admin_key: Path) -> Path:
    """lab01 grabbed over ssh into image GRABBED, after a marker was written on lab01."""
    marked = debian_lab.ssh("lab01", "echo grabbed-from-lab01 > /var/lib/corral-grab-marker")
    assert marked.returncode == 0, marked.stderr
    done = debian_lab.cli("image", "grab", "lab01", GRABBED, in_lab=True, timeout=1800)
    assert done.returncode == 0, done.stderr[-3000:]
    return api.rootfs(debian_lab.corral, GRABBED)


def test_image_grab_copies_the_running_node_over_ssh_without_its_own_files(
    debian_lab: DebianLab, grabbed: Path
) -> None:
    assert (grabbed / "var/lib/corral-grab-marker").read_text() == "grabbed-from-lab01\n"
    assert (grabbed / "usr/sbin/sshd").is_file() and (grabbed / "usr/bin/python3").exists()
    assert not list((grabbed / "etc/ssh").glob("ssh_host_*"))
    assert (grabbed / "etc/machine-id").read_text() == ""
    assert list((grabbed / "etc/corral").iterdir()) == []  # no node credential, no name
    assert list((grabbed / "proc").iterdir()) == []
    # what lab01's overlays rendered is left out: each node that boots it gets its own
    for rendered in ("etc/hostname", "root/.ssh/authorized_keys", "usr/lib/corral/corral-agent"):
        assert not (grabbed / rendered).exists(), rendered
    artifacts = pack_image(debian_lab.corral, GRABBED, SERVER_URL)
    assert artifacts.kernel_version  # the grabbed tree carries its kernel
    assert api.get_image(debian_lab.corral, GRABBED).artifacts is not None


def test_the_grabbed_image_boots_lab02_as_itself_after_an_ssh_power_reset(
    debian_lab: DebianLab, grabbed: Path, admin_key: Path
) -> None:
    corral, paths = debian_lab.corral, debian_lab.corral.settings.paths
    if api.get_image(corral, GRABBED).artifacts is None:
        pack_image(corral, GRABBED, SERVER_URL)
    original = corral.read().nodes["lab02"]
    ssh_power = {
        "driver": "ssh",
        "address": debian_lab.ip("lab02"),
        "options": {"identity_file": str(admin_key), "known_hosts": str(paths.known_hosts)},
    }
    debian_lab.actions.set_nodes(["lab02"], {"image": GRABBED, "power": ssh_power})
    try:
        status = debian_lab.cli("power", "status", "lab02", "-o", "json", in_lab=True)
        assert status.returncode == 0, status.stderr
        assert json.loads(status.stdout)[0]["result"] == "on", status.stdout  # sshd answered
        asked = time.time()
        reset = debian_lab.cli("power", "reset", "lab02", in_lab=True)
        assert reset.returncode == 0, reset.stdout + reset.stderr
        wait_for(
            "lab02 to boot the grabbed image and report ready",
            lambda: "ready" in states_since(debian_lab.actions, "lab02", asked),
            timeout=1200,
            every=5,
        )
    finally:
        corral.change(lambda inv: inv.nodes.__setitem__("lab02", original))
    # a new boot, not a resume
    assert "downloading" in states_since(debian_lab.actions, "lab02", asked)
    done = debian_lab.ssh(  # strict host-key check: lab02's own overlay keys
        "lab02", "uname -n; cat /etc/machine-id /etc/corral/node /var/lib/corral-grab-marker"
    )
    assert done.returncode == 0, done.stderr
    machine_id = HostKeyStore(paths.home / "keys").machine_id("lab02")
    assert done.stdout.splitlines() == ["lab02", machine_id, "lab02", "grabbed-from-lab01"]


def test_lab03_too_small_for_ram_installs_stateful_and_keeps_var_across_a_reboot(
    debian_lab: DebianLab,
) -> None:
    node, lab = debian_lab.small, debian_lab
    disk = {"device": "/dev/vda", "partitions": [{"label": "root", "format": "ext4", "mount": "/"}]}
    lab.actions.set_nodes([node], {"boot": "stateful", "disk": disk})
    asked = time.time()
    power(lab.lab, node, Action.CYCLE)  # the fixture left it stopped after its failures
    wait_for(
        f"{node} installed on its disk and ready",
        lambda: "ready" in states_since(lab.actions, node, asked),
        timeout=1500,
        every=5,
    )
    assert "installing" in states_since(lab.actions, node, asked)
    assert "GRUB installed on /dev/vda (bios)" in lab.serial(node)
    written = lab.ssh(node, "head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \\n' > /var/marker")
    assert written.returncode == 0, written.stderr
    marker = lab.ssh(node, "cat /var/marker; sync").stdout.strip()
    assert len(marker) == 32

    log = Path(next(vm.serial_log for vm in lab.state.vms if vm.name == node))
    offset = len(log.read_bytes())
    rebooted = time.time()
    lab.ssh(node, "systemctl reboot")  # ssh may lose the connection: the states below tell
    wait_for(
        f"{node} back from its disk and ready",
        lambda: "ready" in states_since(lab.actions, node, rebooted),
        timeout=900,
        every=5,
    )
    since_reboot = states_since(lab.actions, node, rebooted)
    assert not {"downloading", "installing", "unpacking"} & set(since_reboot), since_reboot
    console = log.read_bytes()[offset:].decode(errors="replace")
    assert "corral initramfs" not in console  # GRUB booted the disk; corral's did not run
    assert "BOOT_IMAGE=/boot/vmlinuz-" in console  # GRUB put that there
    done = lab.ssh(node, "cat /var/marker; echo; findmnt -n -o SOURCE,FSTYPE /")
    found, source, fstype = done.stdout.split()
    assert (found, fstype) == (marker, "ext4") and source.startswith("/dev/vda"), done.stdout

    # `corral node reinstall`: the next network boot runs the installer again
    reinstall = lab.cli("node", "reinstall", node)
    assert reinstall.returncode == 0, reinstall.stderr
    asked = time.time()
    power(lab.lab, node, Action.RESET)
    wait_for(
        f"{node}'s reinstall downloading the image",
        lambda: "downloading" in states_since(lab.actions, node, asked),
        timeout=600,
        every=2,
    )
