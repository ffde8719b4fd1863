"""Facts read from an image tree: walk order, fingerprint, size, architecture, kernels.

The walk is the one canonical order (names sorted byte-wise, depth first),
used by the archive writer, the fingerprint and the cpio writer alike.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from corral.images.records import Kernel, version_key

MOUNT_POINTS = {"proc": 0o555, "sys": 0o555, "dev": 0o755, "run": 0o755, "tmp": 0o1777}
ELF_MACHINES = {3: "i386", 0x3E: "amd64", 0x28: "armhf", 0xB7: "arm64", 0xF3: "riscv64"}
# what the initramfs hands over to, in this order (corral/agent/init: hand_over)
INITS = ("sbin/init", "lib/systemd/systemd")
ARCH_PROBES = ("bin/busybox", "usr/bin/busybox", "usr/bin/env", "bin/sh", "usr/bin/sh", "sbin/init")


def walk(root: Path) -> Iterator[tuple[str, os.stat_result]]:
    """Every entry under `root` as (relative path, lstat), root itself first as '.'."""
    yield ".", os.lstat(root)
    yield from _walk(os.fsencode(root), b"")


def _walk(base: bytes, rel: bytes) -> Iterator[tuple[str, os.stat_result]]:
    path = base + b"/" + rel if rel else base
    with os.scandir(path) as it:
        entries = sorted(it, key=lambda e: e.name)
    for entry in entries:
        sub = rel + b"/" + entry.name if rel else entry.name
        st = entry.stat(follow_symlinks=False)
        yield os.fsdecode(sub), st
        if stat.S_ISDIR(st.st_mode):
            yield from _walk(base, sub)


@dataclass(frozen=True)
class TreeStats:
    fingerprint: str
    size: int
    files: int


def scan(root: Path) -> TreeStats:
    """Fingerprint (paths, modes, owners, sizes, mtimes: no file data is read) and size."""
    h = hashlib.sha256()
    size = files = 0
    for rel, st in walk(root):
        h.update(
            f"{rel}\0{st.st_mode}\0{st.st_uid}\0{st.st_gid}\0{st.st_size}\0{st.st_mtime_ns}\n".encode(
                errors="surrogateescape"
            )
        )
        files += 1
        if stat.S_ISREG(st.st_mode):
            size += st.st_size
    return TreeStats(h.hexdigest(), size, files)


def fingerprint(root: Path) -> str:
    return scan(root).fingerprint


def resolve(root: Path, rel: str, depth: int = 0) -> Path | None:
    """`rel` inside the image, following symlinks as the image would (absolute = image root)."""
    current = root
    for part in [p for p in rel.split("/") if p and p != "."]:
        candidate = current / part
        if part == "..":
            candidate = current.parent if current != root else root
        if candidate.is_symlink():
            if depth > 20:
                return None
            target = os.readlink(candidate)
            base = "" if target.startswith("/") else str(current.relative_to(root))
            found = resolve(root, f"{base}/{target}", depth + 1)
            if found is None:
                return None
            candidate = found
        current = candidate
    return current if current.exists() else None


def architecture(root: Path) -> str:
    """Debian architecture name of the image's binaries, from an ELF header."""
    for probe in ARCH_PROBES:
        path = resolve(root, probe)
        if path is None or not path.is_file():
            continue
        with path.open("rb") as fh:
            head = fh.read(20)
        if head[:4] == b"\x7fELF":
            machine = int.from_bytes(head[18:20], "little" if head[5] == 1 else "big")
            return ELF_MACHINES.get(machine, f"elf-{machine:#x}")
    return "unknown"


def kernels(root: Path) -> list[Kernel]:
    """Kernels under boot/ (vmlinuz-VERSION), each with whether its modules exist."""
    boot = resolve(root, "boot")
    if boot is None or not boot.is_dir():
        return []
    found = []
    for path in boot.glob("vmlinuz-*"):
        version = path.name.removeprefix("vmlinuz-")
        mods = resolve(root, f"lib/modules/{version}")
        rel = str(path.relative_to(root))
        found.append(Kernel(version=version, vmlinuz=rel, modules=mods is not None))
    return sorted(found, key=lambda k: version_key(k.version))


def init(root: Path) -> str | None:
    """The image's init as the initramfs will run it (symlinks followed), or None."""
    for rel in INITS:
        path = resolve(root, rel)
        if path is not None and path.is_file() and os.access(path, os.X_OK):
            return "/" + rel
    return None


def ensure_mount_points(root: Path) -> None:
    """Create /proc, /sys, /dev, /run, /tmp if missing, so chroots need not change the tree."""
    for name, mode in MOUNT_POINTS.items():
        path = root / name
        if not path.exists() and not path.is_symlink():
            path.mkdir()
            path.chmod(mode)
