"""The lab's image: the tiny image (busybox + a Debian kernel), built on first use.

On top of `corral.images.tiny` it adds what a booted lab node runs: a busybox
init that mounts the basics, prints one marker line with its hostname and
address on the serial console (what the demo shows and the e2e tests read),
reports `booted` to the server (the initramfs only reports `handover`; on
systemd images the node agent reports `booted`), and keeps a root shell on
ttyS0.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from corral.app import Corral
from corral.config import DEFAULT_HTTP_PORT
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
/etc/init.d/corral-booted
"""
# Reports `booted` with the node credential the initramfs left in /etc/corral (if
# any). The request goes through nc on a pipe: the credential is in no argv.
BOOTED_REPORT = """#!/bin/sh
report() { # SERVER: POST `booted` there; true on a 200
    hostport=${1#*://}
    hostport=${hostport%%/*}
    host=${hostport%:*} port=${hostport##*:}
    [ "$port" = "$hostport" ] && port=80
    # this test image has no TLS client: it reports over the lab server's plain HTTP
    # port, which serves the node API too (docs/security.md, "Transport")
    case "$1" in https://*) port=__HTTP_PORT__ hostport=$host:__HTTP_PORT__ ;; esac
    body='{"state":"booted"}'
    auth= credential=/etc/corral/node.credential
    [ -s $credential ] && auth="Authorization: Bearer $(cat $credential)"
    {
        printf 'POST /api/v1/boot/self/state HTTP/1.0\r\nHost: %s\r\n' "$hostport"
        [ -n "$auth" ] && printf '%s\r\n' "$auth"
        printf 'Content-Type: application/json\r\nContent-Length: %s\r\n\r\n%s' "${#body}" "$body"
    } | timeout 20 nc "$host" "$port" | head -n 1 | grep -q ' 200 '
}
# the server the initramfs left for the agent, then every server (several servers);
# a server restarting must not lose the report: try for about a minute
servers=$(cat /etc/corral/server /etc/corral/servers 2>/dev/null | awk '!seen[$0]++')
[ -n "$servers" ] || exit 0
for pause in 1 2 4 8 16 16 16 0; do
    for server in $servers; do report "$server" && exit 0; done
    sleep $pause
done
echo "corral: could not report booted to $servers" > /dev/console
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
    report = root / "etc" / "init.d" / "corral-booted"
    report.write_text(BOOTED_REPORT.replace("__HTTP_PORT__", str(DEFAULT_HTTP_PORT)))
    report.chmod(0o755)


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


LAB_SUITE = "bookworm"  # the Debian release a lab preset's image is built from


def ensure_preset_image(app: Corral, name: str, preset: str, reporter: Reporter = QUIET) -> None:
    """Build `name` with `corral image build --debootstrap` and an image preset, unless it exists.

    The built image stays in CORRAL_HOME: the next `lab up` boots it without a rebuild."""
    try:
        api.get_image(app, name)
        return
    except NotFound:
        pass
    api.build_image(app, name, LAB_SUITE, preset=preset, reporter=reporter)


def prepare_image(
    app: Corral,
    name: str,
    server_url: str,
    reporter: Reporter = QUIET,
    preset: str | None = None,
) -> Artifacts:
    """The lab image packed for booting: the tiny image, or one built from an image preset."""
    if preset is None:
        ensure_image(app, name, reporter)
    else:
        ensure_preset_image(app, name, preset, reporter)
    return pack_image(app, name, server_url, reporter=reporter)
