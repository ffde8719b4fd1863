"""The lab's image: the tiny image (busybox + a Debian kernel), built on first use.

On top of `corral.images.tiny` it adds what a booted lab node runs: a busybox
init that mounts the basics, prints one marker line with its hostname and
address on the serial console (what the demo shows and the e2e tests read),
and keeps a root shell on ttyS0.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from corral.app import Corral
from corral.images import api
from corral.images.artifacts import pack_image
from corral.images.progress import QUIET, Reporter
from corral.images.records import Artifacts
from corral.images.tiny import build_tiny_tree
from corral.inventory.errors import NotFound

BOOTED_MARKER = "corral-node-up"
INITTAB = """::sysinit:/etc/init.d/rcS
ttyS0::respawn:-/bin/sh
::ctrlaltdel:/sbin/reboot
::shutdown:/bin/umount -a -r
"""
RCS = f"""#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mkdir -p /dev/pts /run /tmp
mount -t devpts devpts /dev/pts 2>/dev/null
hostname -F /etc/hostname
addr=$(ip -4 -o addr show scope global | awk '{{print $4}}' | head -n 1)
root=$(awk '$2 == "/" {{print $1}}' /proc/mounts | tail -n 1)
echo "{BOOTED_MARKER} hostname=$(hostname) address=$addr root=$root kernel=$(uname -r)" \
    > /dev/console
"""


def kernel_cache() -> Path:
    """Where the Debian kernel package is kept between runs."""
    base = os.environ.get("CORRAL_KERNEL_CACHE")
    return Path(base) if base else Path("/var/cache/corral/kernel")


def add_lab_init(root: Path) -> None:
    (root / "etc" / "init.d").mkdir(parents=True, exist_ok=True)
    (root / "etc" / "inittab").write_text(INITTAB)
    rcs = root / "etc" / "init.d" / "rcS"
    rcs.write_text(RCS)
    rcs.chmod(0o755)


def ensure_image(app: Corral, name: str, reporter: Reporter = QUIET) -> None:
    """Build and import the tiny image as `name` unless an image of that name exists."""
    try:
        api.get_image(app, name)
        return
    except NotFound:
        pass
    work = Path(tempfile.mkdtemp(prefix="corral-tiny-"))
    try:
        tree = work / "rootfs"
        build_tiny_tree(tree, kernel_cache())
        add_lab_init(tree)
        api.import_image(app, str(tree), name, reporter)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def prepare_image(app: Corral, name: str, server_url: str, reporter: Reporter = QUIET) -> Artifacts:
    ensure_image(app, name, reporter)
    return pack_image(app, name, server_url, reporter=reporter)
