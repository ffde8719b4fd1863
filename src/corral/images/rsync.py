"""Copying trees with rsync: `corral image grab` (over ssh) and directory imports
(rsync's local mode), through the same argv builder.

Owners are kept numerically (a node's uid 100 stays 100 whatever the server's
/etc/passwd says), with hard links, ACLs, xattrs and sparse files, and rsync
stays on one filesystem. The grab excludes leave the mount-point directories
in place but not their contents, and drop what makes a machine unique.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from pathlib import Path

from corral.images import tools
from corral.images.progress import QUIET, Reporter

GRAB_EXCLUDES = (
    "/proc/*",
    "/sys/*",
    "/dev/*",
    "/run/*",
    "/tmp/*",  # noqa: S108 (a path on the node, not ours)
    "/var/tmp/*",  # noqa: S108
    "/mnt/*",
    "/media/*",
    "/lost+found",
    "/etc/machine-id",
    "/var/lib/dbus/machine-id",
    "/etc/ssh/ssh_host_*",
    "/etc/corral/*",  # the node's credential and name, written by the initramfs at each boot
    "/var/lib/systemd/random-seed",
    "/var/cache/apt/archives/*.deb",
    "/swapfile",
)
SSH_OPTIONS = ("-o", "BatchMode=yes", "-o", "ConnectTimeout=10")
_PROGRESS = re.compile(r"^\s*([\d,]+)\s+(\d+)%")


def ssh_command(
    port: int | None = None, identity: Path | None = None, extra: Sequence[str] = ()
) -> list[str]:
    argv = ["ssh", *SSH_OPTIONS]
    if port:
        argv += ["-p", str(port)]
    if identity:
        argv += ["-i", str(identity)]
    return argv + list(extra)


def rsync_argv(
    source: str, dest: Path, excludes: Sequence[str] = (), ssh: Sequence[str] | None = None
) -> list[str]:
    """rsync command copying the tree `source` (a path, or HOST:/ with `ssh`) into `dest`."""
    argv = ["rsync", "-aHAXS", "--numeric-ids", "--one-file-system", "--info=progress2"]
    argv += [f"--exclude={pattern}" for pattern in excludes]
    if ssh is not None:
        argv += ["-e", shlex.join(ssh)]
    return [*argv, source.rstrip("/") + "/", str(dest) + "/"]


def remote_source(host: str, user: str = "root") -> str:
    return f"{user}@{host}:/"


def copy_tree(argv: Sequence[str], reporter: Reporter = QUIET) -> None:
    """Run an rsync built by `rsync_argv`, reporting its overall progress."""
    tools.require("rsync", "rsync")
    reporter.start("copying", None)
    done = 0

    def on_line(line: str) -> None:
        nonlocal done
        match = _PROGRESS.match(line)
        if match:
            copied = int(match.group(1).replace(",", ""))
            reporter.advance(max(0, copied - done))
            done = max(done, copied)

    tools.stream(argv, on_line)
