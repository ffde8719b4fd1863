"""What each part of corral's initramfs costs every node that boots (issue 13: <= 8 MB).

    PYTHONPATH=src .venv/bin/python bench/initramfs_size.py [--tree IMAGE_TREE] [--top 25]
        [--levels 9,12,16,19]

Builds the initramfs exactly as `corral image pack` does (`build_initramfs`, with
a throwaway PKI) for the kernel of IMAGE_TREE, by default the tiny test image
(built from the kernel package cached under $CORRAL_TEST_CACHE or
/var/cache/corral-test, as the tests do), and prints:

- both archives as shipped: the first part (what every node downloads) and the
  second (disk tools, dropbear, disk modules: fetched only by nodes that need it);
- for each, one row per part: each program with the shared libraries only it needs; the
  libraries several programs share; the kernel modules by kind; the CA and
  signing key; init, /etc and the applet links. Each part is compressed on its
  own at the shipped level, so the parts add up to about the whole;
- the first part's largest files, each compressed on its own;
- with --levels, the first part's whole archive at those zstd levels and the time.

Libraries are attributed from the DT_NEEDED entries of the files in the
initramfs itself (readelf), so a stubbed library shows its stub's cost.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import zstandard

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from corral import pki
from corral.images import initramfs, tree
from corral.images.cpio import CpioWriter
from corral.images.tiny import build_tiny_tree

MB = 1_000_000
MODULE_KINDS = (
    ("drivers/net", "kernel modules: NIC drivers"),
    ("drivers/", "kernel modules: storage and buses"),
    ("fs/", "kernel modules: filesystems"),
    ("", "kernel modules: other (crc, crypto, lib)"),
)


def library_owners(stage: Path, programs: dict[str, Path]) -> dict[Path, set[str]]:
    """For each library in the stage: the programs whose load closure maps it."""
    owners: dict[Path, set[str]] = defaultdict(set)
    for name, binary in programs.items():
        for lib in initramfs.library_closure(stage, binary):
            owners[lib].add(name)
    return owners


def classify(stage: Path) -> dict[str, list[Path]]:
    """Part name -> the regular files of the stage in that part."""
    programs = {p.name: p for p in initramfs.programs_in(stage)}
    owners = library_owners(stage, programs)
    parts: dict[str, list[Path]] = defaultdict(list)
    for name, path in programs.items():
        parts[f"{name} (program)"].append(path)
    for path in sorted(p for p in stage.rglob("*") if p.is_file() and not p.is_symlink()):
        rel = str(path.relative_to(stage))
        if path in programs.values():
            continue
        if rel.startswith("lib/modules/"):
            sub = rel.split("/", 3)[3] if rel.count("/") >= 3 else ""
            if not sub.startswith("kernel/"):
                parts["kernel modules: index (depmod)"].append(path)
                continue
            kind = next(k for prefix, k in MODULE_KINDS if sub[len("kernel/") :].startswith(prefix))
            parts[kind].append(path)
        elif path in owners:
            users = sorted(owners[path])
            label = users[0] if len(users) == 1 else " + ".join(users)
            parts[f"libraries of {label}"].append(path)
        elif rel.startswith("etc/corral/"):
            parts["CA certificate and signing key"].append(path)
        elif rel in ("init", "etc/corral-kernel") or rel.startswith("etc/"):
            parts["init script, /etc, ld.so.cache"].append(path)
        else:
            parts["other files"].append(path)
    return parts


def compressed(paths: list[Path], level: int) -> int:
    zc = zstandard.ZstdCompressor(level=level, threads=0)
    return len(zc.compress(b"".join(p.read_bytes() for p in paths)))


def kernel_of(root: Path) -> initramfs.KernelSource:
    kernels = [k for k in tree.kernels(root) if k.modules]
    if not kernels:
        raise SystemExit(f"{root}: no boot/vmlinuz-VERSION with lib/modules/VERSION")
    return initramfs.KernelSource(root, kernels[-1].version)


def part_table(stage: Path, level: int) -> None:
    rows = []
    for name, paths in classify(stage).items():
        raw = sum(p.stat().st_size for p in paths)
        rows.append((compressed(paths, level), raw, name, len(paths)))
    rows.sort(reverse=True)
    print("| part | files | raw MB | compressed MB | share |")
    print("| --- | --- | --- | --- | --- |")
    total = sum(r[0] for r in rows)
    for comp, raw, name, n in rows:
        print(f"| {name} | {n} | {raw / MB:.2f} | {comp / MB:.2f} | {comp / total:.0%} |")
    raw_total = sum(r[1] for r in rows)
    print(f"| sum of the parts | | {raw_total / MB:.2f} | {total / MB:.2f} | |\n")


def largest_files(stage: Path, level: int, top: int) -> None:
    files = sorted(
        (p for p in stage.rglob("*") if p.is_file() and not p.is_symlink()),
        key=lambda p: p.stat().st_size,
        reverse=True,
    )[:top]
    print("| largest files | raw MB | compressed MB |")
    print("| --- | --- | --- |")
    for p in files:
        rel = p.relative_to(stage)
        print(f"| {rel} | {p.stat().st_size / MB:.2f} | {compressed([p], level) / MB:.2f} |")
    print()


def levels_table(stage: Path, levels: list[int]) -> None:
    """The first part's whole cpio at other zstd levels (one thread: the pack's worst case)."""
    buf = io.BytesIO()
    writer = CpioWriter(buf, mtime=0)
    writer.add_tree(stage)
    writer.close()
    raw = buf.getvalue()
    print("| zstd level (first part, one thread) | MB | seconds |")
    print("| --- | --- | --- |")
    for level in levels:
        start = time.perf_counter()
        size = len(zstandard.ZstdCompressor(level=level, threads=0).compress(raw))
        print(f"| {level} | {size / MB:.2f} | {time.perf_counter() - start:.1f} |")
    print()


def report(root: Path, top: int, levels: list[int]) -> None:
    kernel = kernel_of(root)
    level = initramfs.ZSTD_LEVEL
    with tempfile.TemporaryDirectory(prefix="initramfs-size-") as tmp:
        home = Path(tmp) / "home"
        keys = pki.Pki(home / "pki")
        pki.ensure(keys)
        record = initramfs.build_initramfs(home, kernel, keys)
        stage, part = Path(tmp) / "stage", Path(tmp) / "part"
        stage.mkdir()
        part.mkdir()
        initramfs.populate(stage, kernel)
        initramfs.split_tools(stage, part, kernel)
        initramfs.install_trust(stage, keys)
        print(f"kernel {kernel.version} ({kernel.arch}), image tree {root}")
        tools_mb = record.tools.size / MB if record.tools else 0.0
        print(
            f"initramfs as shipped ({record.format}, level {level}): every node "
            f"{record.size / MB:.2f} MB; second part (stateful, scripts, service) "
            f"{tools_mb:.2f} MB\n"
        )
        print("First part: what every node downloads\n")
        part_table(stage, level)
        largest_files(stage, level, top)
        if levels:
            levels_table(stage, levels)
        print("Second part: fetched by the init for a stateful install, a script, service mode\n")
        part_table(part, level)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tree", type=Path, help="an image tree (default: the tiny test image)")
    parser.add_argument("--top", type=int, default=25, help="how many single files to list")
    parser.add_argument(
        "--levels", default="", help="zstd levels to try on the first part, e.g. 9,12,16,19"
    )
    parser.add_argument(
        "--kernel-cache",
        type=Path,
        default=Path(os.environ.get("CORRAL_TEST_CACHE", "/var/cache/corral-test")),
        help="where the tiny image's kernel package is cached (the tests' cache)",
    )
    args = parser.parse_args()
    levels = [int(x) for x in args.levels.split(",") if x]
    if args.tree:
        report(args.tree, args.top, levels)
        return
    with tempfile.TemporaryDirectory(prefix="tiny-") as tmp:
        build_tiny_tree(Path(tmp) / "rootfs", args.kernel_cache)
        report(Path(tmp) / "rootfs", args.top, levels)


if __name__ == "__main__":
    main()
