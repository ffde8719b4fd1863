"""`corral image build --debootstrap`: a Debian tree from the machine's own mirror.

The mirror is read from apt's sources (deb822 `*.sources` files first, then
the one-line `sources.list` format), never hard-coded: a site with a local
mirror or a proxy gets it used, and an offline machine fails clearly.

debootstrap installs minbase plus a preset's packages (`corral.images.presets`);
`finish_tree` then makes the tree an image every node can boot as itself:
the preset's units enabled, and nothing that is per node or only takes room
(package cache, host keys, machine-id, the build host's resolv.conf). The
distribution's own initrd stays: `pack` serves it apart from the image, to
stateful installs only (stateless nodes boot corral's initramfs).
"""

from __future__ import annotations

import glob
import os
import platform
import re
import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path

from corral.images import tools, tree
from corral.images.errors import ImageError
from corral.images.progress import QUIET, Reporter

APT = Path("/etc/apt")
BINFMT = Path("/proc/sys/fs/binfmt_misc")
# Debian architecture -> the name of QEMU's user-mode emulator and its binfmt entry
QEMU_NAMES = {"arm64": "aarch64", "armhf": "arm", "riscv64": "riscv64", "amd64": "x86_64"}
DEB_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "armhf", "riscv64": "riscv64"}


def _deb822_mirrors(text: str) -> Iterable[tuple[str, list[str]]]:
    for stanza in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        for line in stanza.splitlines():
            if line.startswith("#") or ":" not in line or line[0].isspace():
                continue
            key, _, value = line.partition(":")
            fields[key.strip().lower()] = value.strip()
        if "deb" in fields.get("types", "").split() and fields.get("enabled", "yes") != "no":
            for uri in fields.get("uris", "").split():
                yield uri, fields.get("suites", "").split()


def _list_mirrors(text: str) -> Iterable[tuple[str, list[str]]]:
    for line in text.splitlines():
        words = re.sub(r"\[[^]]*\]", "", line.split("#", 1)[0]).split()
        if len(words) >= 3 and words[0] == "deb":
            yield words[1], [words[2]]


def mirror_from_sources(deb822: Sequence[str], one_line: Sequence[str]) -> str | None:
    """The first Debian archive that is not a security or updates suite."""
    entries = [e for t in deb822 for e in _deb822_mirrors(t)]
    entries += [e for t in one_line for e in _list_mirrors(t)]
    for uri, suites in entries:
        if not any(s.endswith(("-security", "/updates")) for s in suites):
            return uri.rstrip("/")
    return None


def configured_mirror(apt: Path = APT) -> str:
    deb822 = [p.read_text() for p in sorted((apt / "sources.list.d").glob("*.sources"))]
    lists = [apt / "sources.list", *sorted((apt / "sources.list.d").glob("*.list"))]
    one_line = [p.read_text() for p in lists if p.is_file()]
    mirror = mirror_from_sources(deb822, one_line)
    if mirror is None:
        raise ImageError(f"no Debian mirror configured in {apt}/sources.list(.d); add one")
    return mirror


def host_architecture() -> str:
    machine = platform.machine()
    return DEB_ARCH.get(machine, machine)


def debootstrap_argv(
    suite: str,
    target: Path,
    mirror: str,
    include: Sequence[str] = (),
    variant: str = "minbase",
    arch: str | None = None,
    foreign: bool = False,
) -> list[str]:
    argv = ["debootstrap", f"--variant={variant}", f"--arch={arch or host_architecture()}"]
    if foreign:
        argv.append("--foreign")  # unpack only; the second stage runs under emulation
    if include:
        argv.append("--include=" + ",".join(include))
    return [*argv, suite, str(target), mirror]


def run_debootstrap(argv: Sequence[str], reporter: Reporter = QUIET) -> None:
    tools.require("debootstrap", "debootstrap")
    reporter.start(f"debootstrap {argv[-3]}", None)
    tools.stream(argv, reporter.note)


def check_emulation(arch: str, binfmt: Path = BINFMT) -> None:
    """Building another architecture's tree runs its programs (the packages' scripts):
    the kernel must hand them to QEMU through binfmt_misc, with the F flag so that
    the interpreter is found inside debootstrap's chroot too."""
    qemu = QEMU_NAMES.get(arch, arch)
    entry = binfmt / f"qemu-{qemu}"
    try:
        text = entry.read_text()
    except OSError:
        text = ""
    how = (
        f"apt-get install qemu-user-static binfmt-support, then update-binfmts --enable "
        f"qemu-{qemu} (where no init mounted it first: mount -t binfmt_misc binfmt_misc {binfmt})"
    )
    if not text.startswith("enabled"):
        raise ImageError(
            f"building an {arch} image on {host_architecture()} runs {arch} programs, "
            f"and {entry} is not enabled: {how}"
        )
    flags = next((ln.split(":", 1)[1] for ln in text.splitlines() if ln.startswith("flags:")), "")
    if "F" not in flags:
        raise ImageError(f"{entry} lacks the F flag (QEMU is not found inside a chroot): {how}")


def run_second_stage(root: Path, reporter: Reporter = QUIET) -> None:
    """debootstrap's second stage inside the foreign tree (its programs run under QEMU)."""
    reporter.start("debootstrap second stage (emulated)", None)
    chroot = tools.require("chroot", "coreutils")
    tools.stream([chroot, str(root), "/debootstrap/debootstrap", "--second-stage"], reporter.note)


# Left in the tree by debootstrap or by package scripts, removed after the build:
# the .deb cache and apt's indexes (apt-get update brings them back), the links
# to the initrd, and the per-node files each node gets from its overlay (host keys,
# machine-id, resolv.conf). The initrd initramfs-tools made stays in /boot: `pack`
# keeps it out of the image archive and serves it apart, to stateful installs only.
CLEANUP_GLOBS = (
    "var/cache/apt/archives/*.deb",
    "var/cache/apt/archives/partial/*",
    "var/cache/apt/*.bin",
    "var/lib/apt/lists/*_Packages",
    "var/lib/apt/lists/*Release*",
    "initrd.img",
    "initrd.img.old",
    "etc/ssh/ssh_host_*",
)
# emptied, not removed: systemd then takes the overlay's machine-id (or makes one
# per boot), and `corral image exec` still has a resolv.conf to bind the host's over
EMPTIED = ("etc/machine-id", "etc/resolv.conf")


def enable_units(root: Path, units: Sequence[str]) -> None:
    """Enable systemd units with the image's own systemctl (it only makes symlinks)."""
    if units and tree.resolve(root, "bin/systemctl") is not None:
        tools.run(
            [tools.require("chroot", "coreutils"), str(root), "/bin/systemctl", "enable", *units]
        )


def finish_tree(root: Path, units: Sequence[str] = ()) -> int:
    """Enable `units`, drop caches and per-node files; return the bytes removed."""
    enable_units(root, units)
    removed = 0
    for pattern in CLEANUP_GLOBS:
        for path in map(Path, glob.glob(glob.escape(str(root)) + "/" + pattern)):  # dangling too
            if path.is_symlink() or path.is_file():
                removed += path.lstat().st_size
                path.unlink()
            elif path.is_dir():
                removed += sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
                shutil.rmtree(path)
    for rel in EMPTIED:
        path = root / rel
        if path.is_file() and not path.is_symlink():
            removed += path.stat().st_size
            path.write_text("")
    dbus_id = root / "var/lib/dbus/machine-id"
    if dbus_id.is_file() and not dbus_id.is_symlink():
        dbus_id.unlink()
        os.symlink("/etc/machine-id", dbus_id)
    return removed
