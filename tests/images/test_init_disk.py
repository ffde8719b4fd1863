"""The initramfs's disk functions, run by busybox sh on disk image files.

The functions are cut out of `corral/agent/init` as they are; only the steps
that need a real block device (waiting for partition nodes, mkfs) are stubbed.
What is checked is the partition table sfdisk really writes, and whether a
disk counts as holding data that `disk.wipe` must allow overwriting.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from corral.images.initramfs import AGENT_INIT, BUSYBOX
from tests.conftest import need_tool

STUBS = """
RUN=$SCRATCH
fail() { echo "FAIL: $*"; exit 1; }
wait_for_block() { :; }
make_filesystem() { echo "mkfs $3 $2" >> "$RUN/mkfs"; }
"""


def function(name: str) -> str:
    text = AGENT_INIT.read_text()
    match = re.search(rf"^{name}\(\) {{.*?^}}\n", text, re.S | re.M)
    assert match, f"{name} is not in {AGENT_INIT}"
    return match.group(0)


def run_init(tmp_path: Path, code: str, **env: str) -> str:
    busybox = next(p for p in BUSYBOX if Path(p).is_file())
    names = ("disk_foreign_data", "write_partition_table", "partition_name", "last_lines")
    script = STUBS + "".join(function(n) for n in names) + code
    proc = subprocess.run(
        [busybox, "sh", "-c", script],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "SCRATCH": str(tmp_path), **env},
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


@pytest.fixture
def disk(tmp_path: Path) -> Path:
    need_tool("sfdisk", "blkid", "mkfs.ext4")
    path = tmp_path / "disk.img"
    subprocess.run(["truncate", "-s", "1G", str(path)], check=True)
    return path


def test_a_blank_disk_holds_no_data(tmp_path: Path, disk: Path) -> None:
    assert run_init(tmp_path, f'disk_foreign_data "{disk}"') == ""


def test_a_file_system_on_the_whole_disk_is_data(tmp_path: Path, disk: Path) -> None:
    subprocess.run(["mkfs.ext4", "-q", "-F", str(disk)], check=True)
    assert 'TYPE="ext4"' in run_init(tmp_path, f'disk_foreign_data "{disk}"')


def test_someone_elses_partitions_are_data(tmp_path: Path, disk: Path) -> None:
    subprocess.run(
        ["sfdisk", "-q", str(disk)], input="label: gpt\nsize=100MiB\n,\n", text=True, check=True
    )
    out = run_init(tmp_path, f'disk_foreign_data "{disk}"')
    assert out.strip() == "partitions not named corral-*"


def test_corral_writes_the_layout_and_may_partition_its_own_disk_again(
    tmp_path: Path, disk: Path
) -> None:
    layout = "efi:512:vfat:/boot/efi swap:64:swap: root::xfs:/"
    out = run_init(tmp_path, f'write_partition_table "{disk}"', DISK_PARTITIONS=layout)
    assert "FAIL" not in out
    dump = subprocess.run(
        ["sfdisk", "-d", str(disk)], capture_output=True, text=True, check=True
    ).stdout
    parts = [line for line in dump.splitlines() if " : start=" in line]
    names = [re.search(r'name="([^"]+)"', p).group(1) for p in parts]  # type: ignore[union-attr]
    assert names == ["corral-efi", "corral-swap", "corral-root", "corral-bios-boot"]
    types = [re.search(r"type=([0-9A-F-]+)", p).group(1) for p in parts]  # type: ignore[union-attr]
    assert types[0] == "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"  # EFI system partition
    assert types[1] == "0657FD6D-A4AB-43C4-84E5-0933C84B4F4F"  # Linux swap
    assert types[3] == "21686148-6449-6E6F-744E-656564454649"  # BIOS boot, for GRUB
    assert "start=          34" in parts[3]  # in the gap before partition 1
    mkfs = (tmp_path / "mkfs").read_text().splitlines()
    assert mkfs == ["mkfs vfat efi", "mkfs swap swap", "mkfs xfs root"]
    # corral's own disk is not "data": a reinstall may partition it again
    assert run_init(tmp_path, f'disk_foreign_data "{disk}"') == ""
