"""What each part of corral's initramfs costs every node that boots (issue 13: <= 8 MB).

    PYTHONPATH=src .venv/bin/python bench/initramfs_size.py [--tree IMAGE_TREE] [--top 25]
        [--levels 9,12,16,19] [--compare]

Builds the initramfs exactly as `corral image pack` does (`build_initramfs`, with
a throwaway PKI) for the kernel of IMAGE_TREE, by default the tiny test image
(built from the kernel package cached under $CORRAL_TEST_CACHE or
/var/cache/corral-test, as the tests do), and prints:

- the archives as shipped: the first part (what every node downloads), the full
  NIC pack, and the second part (disk tools, dropbear, disk modules: fetched
  only by nodes that need it);
- what every node downloads: the first part and the NIC pack of its NIC, for a
  few typical NICs (`nicpack`: virtio, e1000, mlx5, ...);
- for each, one row per part: each program with the shared libraries only it needs; the
  libraries several programs share; the kernel modules by kind; the CA and
  signing key; init, /etc and the applet links. Each part is compressed on its
  own at the shipped level, so the parts add up to about the whole;
- the first part's largest files, each compressed on its own;
- with --levels, the first part's whole archive at those zstd levels and the time;
- with --compare, the first part under zstd 9/19/22 (with --long) and xz (with and
  without the x86 BCJ filter, CRC32 as the kernel wants): size, seconds to pack,
  and seconds to unpack here (median of 3, min-max), the node-side cost.

Libraries are attributed from the DT_NEEDED entries of the files in the
initramfs itself (readelf), so a stubbed library shows its stub's cost.
"""

from __future__ import annotations

import argparse
import io
import lzma
import os
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import zstandard

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from corral import pki
from corral.images import initramfs, nicpack, tree
from corral.images.cpio import CpioWriter
from corral.images.records import Initramfs
from corral.images.tiny import build_tiny_tree

MB = 1_000_000
# typical NICs: (label, PCI vendor, device)
NICS = (
    ("virtio-net", "1AF4", "1000"),
    ("Intel e1000 (QEMU)", "8086", "100E"),
    ("Intel X710 (i40e)", "8086", "1572"),
    ("Broadcom BCM57414 (bnxt_en)", "14E4", "16D7"),
    ("Mellanox ConnectX-4 Lx (mlx5)", "15B3", "1015"),
    ("Mellanox ConnectX-5 (mlx5)", "15B3", "1017"),
    ("Mellanox ConnectX-3 (mlx4)", "15B3", "1003"),
)
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
        elif rel.startswith("etc/corral/") and rel != nicpack.MARKER:
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
    raw = cpio_of(stage)
    print("| zstd level (first part, one thread) | MB | seconds |")
    print("| --- | --- | --- |")
    for level in levels:
        start = time.perf_counter()
        size = len(zstandard.ZstdCompressor(level=level, threads=0).compress(raw))
        print(f"| {level} | {size / MB:.2f} | {time.perf_counter() - start:.1f} |")
    print()


def cpio_of(stage: Path) -> bytes:
    buf = io.BytesIO()
    writer = CpioWriter(buf, mtime=0)
    writer.add_tree(stage)
    writer.close()
    return buf.getvalue()


def timed(make: Callable[[], bytes], runs: int = 1) -> tuple[bytes, list[float]]:
    times, out = [], b""
    for _ in range(runs):
        start = time.perf_counter()
        out = make()
        times.append(time.perf_counter() - start)
    return out, times


def compare_table(stage: Path) -> None:
    """The first part under zstd and xz: size, pack time, unpack time (the node's cost)."""
    raw = cpio_of(stage)
    rows = []
    for level, long in ((9, False), (19, False), (19, True), (22, False), (22, True)):
        zc = zstandard.ZstdCompressor(level=level, threads=0)  # as shipped: sized to the input
        if long:
            params = zstandard.ZstdCompressionParameters.from_level(
                level, source_size=len(raw), enable_ldm=True, window_log=27
            )
            zc = zstandard.ZstdCompressor(compression_params=params, threads=0)
        packed, pack_t = timed(lambda zc=zc: zc.compress(raw))
        zd = zstandard.ZstdDecompressor(max_window_size=1 << 27)
        _, unpack_t = timed(lambda p=packed, zd=zd: zd.decompress(p, max_output_size=len(raw)), 3)
        rows.append((f"zstd -{level}{' --long=27' if long else ''}", packed, pack_t, unpack_t))
    for bcj in (False, True):
        filters = [{"id": lzma.FILTER_X86}] if bcj else []
        filters.append({"id": lzma.FILTER_LZMA2, "preset": 9 | lzma.PRESET_EXTREME})
        packed, pack_t = timed(
            lambda f=filters: lzma.compress(raw, lzma.FORMAT_XZ, lzma.CHECK_CRC32, filters=f)
        )
        _, unpack_t = timed(lambda p=packed: lzma.decompress(p), 3)
        rows.append((f"xz -9e{' --x86' if bcj else ''} --check=crc32", packed, pack_t, unpack_t))
    print(f"First part compressed ({len(raw) / MB:.2f} MB raw cpio; one thread)\n")
    print("| compression | MB | pack s | unpack s, median of 3 (min-max) |")
    print("| --- | --- | --- | --- |")
    for label, packed, pack_t, unpack_t in rows:
        spread = f"{min(unpack_t):.2f}-{max(unpack_t):.2f}"
        med = statistics.median(unpack_t)
        print(f"| {label} | {len(packed) / MB:.2f} | {pack_t[0]:.1f} | {med:.2f} ({spread}) |")
    print(f"\nload average {os.getloadavg()[0]:.1f} at the end\n")


def nic_table(home: Path, record: Initramfs) -> None:
    """What every node downloads: the first part and the pack of its NIC."""
    assert record.base is not None and record.nics is not None
    packs = nicpack.NicPacks(home / "nic-packs")
    print("| NIC (PCI IDs) | its pack MB | modules | every node: first part + pack MB |")
    print("| --- | --- | --- | --- |")
    for label, vendor, device in NICS:
        found = packs.pack(record.nics.path(home), vendor, device)
        path, names = found if found else (record.nics.path(home), ["all"])
        size = path.stat().st_size
        total = (record.base.size + size) / MB
        mods = " ".join(names)
        print(f"| {label} ({vendor}:{device}) | {size / MB:.2f} | {mods} | {total:.2f} |")
    full, whole = record.nics.size / MB, (record.base.size + record.nics.size) / MB
    print(f"| unknown or no IDs: the full pack | {full:.2f} | all | {whole:.2f} |\n")


def report(root: Path, top: int, levels: list[int], compare: bool = False) -> None:
    kernel = kernel_of(root)
    level = initramfs.ZSTD_LEVEL
    with tempfile.TemporaryDirectory(prefix="initramfs-size-") as tmp:
        home = Path(tmp) / "home"
        keys = pki.Pki(home / "pki")
        pki.ensure(keys)
        record = initramfs.build_initramfs(home, kernel, keys)
        stage, part, nics = Path(tmp) / "stage", Path(tmp) / "part", Path(tmp) / "nics"
        for d in (stage, part, nics):
            d.mkdir()
        initramfs.populate(stage, kernel)
        initramfs.split_tools(stage, part, kernel)
        initramfs.split_nics(stage, nics, kernel)
        initramfs.install_trust(stage, keys)
        print(f"kernel {kernel.version} ({kernel.arch}), image tree {root}")
        tools_mb = record.tools.size / MB if record.tools else 0.0
        base_mb = record.base.size / MB if record.base else 0.0
        nics_mb = record.nics.size / MB if record.nics else 0.0
        print(
            f"initramfs as shipped ({record.format}, level {level}): first part "
            f"{base_mb:.2f} MB; full NIC pack {nics_mb:.2f} MB (both in one file: "
            f"{record.size / MB:.2f} MB); second part (stateful, scripts, service) "
            f"{tools_mb:.2f} MB\n"
        )
        nic_table(home, record)
        print("First part: what every node downloads, with its NIC pack\n")
        part_table(stage, level)
        largest_files(stage, level, top)
        if levels:
            levels_table(stage, levels)
        if compare:
            compare_table(stage)
        print("The full NIC pack\n")
        part_table(nics, level)
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
    parser.add_argument(
        "--compare", action="store_true", help="the first part under zstd and xz (see above)"
    )
    args = parser.parse_args()
    levels = [int(x) for x in args.levels.split(",") if x]
    if args.tree:
        report(args.tree, args.top, levels, args.compare)
        return
    with tempfile.TemporaryDirectory(prefix="tiny-") as tmp:
        build_tiny_tree(Path(tmp) / "rootfs", args.kernel_cache)
        report(Path(tmp) / "rootfs", args.top, levels, args.compare)


if __name__ == "__main__":
    main()
