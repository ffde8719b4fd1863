"""The `slurm` image's own slurmctld and munge accept what corral renders, without VMs.

A quick check beside the three-VM lab (tests/e2e/test_slurm_lab.py): the
cached `slurm` preset tree (shared with that test) is mounted read-only under
an overlayfs, the lab controller's rendered slurm.conf, cgroup.conf and munge
key are put in, and the image's slurmctld 22.05 runs in a chroot with its own
hostname and network namespace (lab01 at its lab address on loopback).
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from corral.app import Corral
from corral.config import Settings
from corral.lab.lab import Lab, LabOptions
from corral.overlays.render import renderer_for
from tests.conftest import need, need_tool
from tests.e2e.debian import cached_tree

pytestmark = [pytest.mark.netns, pytest.mark.slow, pytest.mark.timeout(2400)]

FILES = ("/etc/slurm/slurm.conf", "/etc/slurm/cgroup.conf", "/etc/munge/munge.key")
SCRIPT = """set -e
hostname lab01
ip link set lo up
ip addr add {ip}/32 dev lo
chroot {root} sh -c '
chown munge:munge /etc/munge/munge.key && chmod 0400 /etc/munge/munge.key
mkdir -p /run/munge && chown munge:munge /run/munge
su -s /bin/sh munge -c /usr/sbin/munged
munge -n | unmunge | head -n 1
slurmctld -D > /tmp/slurmctld.log 2>&1 &
i=0
until scontrol ping | grep -q UP; do i=$((i+1)); [ $i -gt 60 ] && break; sleep 1; done
sinfo -h -N -o "%N"
scontrol shutdown || true
sleep 2
cat /tmp/slurmctld.log
kill "$(cat /run/munge/munged.pid)" || true  # ours only, by its PID file
'
"""


@pytest.fixture
def image_root(tmp_path: Path) -> Iterator[Path]:
    """The cached slurm tree under a writable overlayfs; unmounted afterwards."""
    need_tool("debootstrap", "unshare", "chroot")
    lower = cached_tree(preset="slurm")
    upper, work, merged = (tmp_path / d for d in ("upper", "work", "merged"))
    for d in (upper, work, merged):
        d.mkdir()
    opts = f"lowerdir={lower},upperdir={upper},workdir={work}"
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o", opts, str(merged)], check=True)
    try:
        subprocess.run(["mount", "-t", "proc", "proc", str(merged / "proc")], check=True)
        yield merged
    finally:
        subprocess.run(["umount", "-l", str(merged / "proc")], check=False)
        subprocess.run(["umount", "-l", str(merged)], check=False)


def test_the_images_slurmctld_starts_with_the_rendered_slurm_conf_and_munge_key(
    image_root: Path, corral_home: Path
) -> None:
    need(Path("/proc/self/ns/net").exists(), "network namespaces needed")
    corral = Corral(Settings.from_env())
    Lab(corral).define(LabOptions(nodes=3, image="slurm", workload="slurm"))
    rendered = renderer_for(corral.settings.paths).render(corral.read(), "lab01", None)
    for path in FILES:
        (image_root / path.lstrip("/")).write_bytes(rendered.files[path].data)
    ip = rendered.files["/etc/slurm/slurm.conf"].data.decode().split("SlurmctldHost=lab01(")[1]
    script = SCRIPT.format(ip=ip.split(")")[0], root=image_root)
    ran = subprocess.run(
        ["unshare", "-u", "-n", "sh", "-c", script],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    out = ran.stdout + ran.stderr
    assert ran.returncode == 0, out
    assert "STATUS:          Success (0)" in out  # munge takes the rendered key
    assert "slurmctld version 22.05" in out and "started on cluster corral" in out, out
    assert sorted(set(ran.stdout.split()) & {"lab01", "lab02", "lab03"}) == [
        "lab01",
        "lab02",
        "lab03",
    ], out
    assert "fatal" not in out, out
