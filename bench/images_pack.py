"""Benchmark: packing a 1 GiB image tree with corral vs `tar | zstd -T0`.

    .venv/bin/python bench/images_pack.py [--size-mib 1024] [--runs 3] [--tree DIR]

Generates (once, then reused) a tree of mixed files: random (incompressible)
data, text-like compressible data, and many small files. Then, in the same
run and on the same tree, times:

- corral: `corral.images.pack.pack_tree` (canonical tar + sha256 + zstd level 3,
  one worker per core, into the artifact store);
- baseline: `tar -C TREE -cf - . | zstd -3 -T0 -q -o OUT`;
- import: `corral image import TREE NAME` through the API (copy + scan + digest).

Prints the median of each and the ratio baseline/corral (>= 0.9 is the target).
"""

from __future__ import annotations

import argparse
import functools
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

MIB = 1 << 20
KIB = 1 << 10
SIZES = [1 * KIB, 4 * KIB, 16 * KIB, 64 * KIB, 256 * KIB, 1 * MIB, 8 * MIB, 32 * MIB]
WEIGHTS = [400, 300, 150, 80, 40, 20, 6, 3]
WORDS = [
    "node", "boot", "image", "kernel", "cluster", "provision", "the", "and", "of", "to",
    "config", "service", "network", "0", "1", "42", "/usr/lib", "error", "info", "debug",
    "=", "{", "}", "return", "def", "int", "static", "void", "struct", "for", "while",
]  # fmt: skip


def corpus(size: int, rng: random.Random) -> bytes:
    """Text-like bytes that compress about 3-4x with zstd -3."""
    out = bytearray()
    while len(out) < size:
        out += " ".join(rng.choices(WORDS, k=4096)).encode() + b"\n"
        out += rng.randbytes(64)
    return bytes(out[:size])


def generate(tree: Path, total: int, seed: int = 1) -> None:
    rng = random.Random(seed)
    text = corpus(64 * MIB, rng)
    tmp = tree.with_name(tree.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    written = n = 0
    while written < total:
        kind = rng.random()
        size = rng.choices(SIZES, WEIGHTS)[0]
        size = min(size, total - written)
        if kind < 0.4:
            data = rng.randbytes(size)
        else:
            start = rng.randrange(0, len(text) - size) if size < len(text) else 0
            data = text[start : start + size]
        path = tmp / f"d{n % 97:02d}" / f"s{n % 13}" / f"f{n}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        written += size
        n += 1
    tmp.rename(tree)
    print(f"generated {tree}: {written / MIB:.0f} MiB in {n} files", flush=True)


def timed(func: Callable[[], object]) -> tuple[float, float]:
    """Wall time and CPU time (this process's threads plus waited-for children)."""
    os.sync()
    cpu = _cpu()
    start = time.perf_counter()
    func()
    return time.perf_counter() - start, _cpu() - cpu


def _cpu() -> float:
    own, kids = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def baseline(tree: Path, out: Path) -> None:
    tar = subprocess.Popen(["tar", "-C", str(tree), "-cf", "-", "."], stdout=subprocess.PIPE)
    subprocess.run(["zstd", "-3", "-T0", "-q", "-f", "-o", str(out)], stdin=tar.stdout, check=True)
    assert tar.stdout is not None
    tar.stdout.close()
    if tar.wait() != 0:
        raise RuntimeError("tar failed")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--tree", type=Path, default=Path("/var/tmp/corral-bench-tree"))
    args = parser.parse_args()
    tree = args.tree
    if not tree.exists():
        generate(tree, args.size_mib * MIB)
    work = Path(tempfile.mkdtemp(prefix="corral-bench-", dir="/var/tmp"))
    try:
        run(tree, work, args.runs)
    finally:
        shutil.rmtree(work)


def run(tree: Path, work: Path, runs: int) -> None:
    from corral.app import Corral
    from corral.config import Settings
    from corral.images.api import import_image
    from corral.images.pack import pack_tree

    subprocess.run(["tar", "-C", str(tree), "-cf", "/dev/null", "."], check=True)  # warm cache
    ours, theirs, imports = [], [], []
    sizes: dict[str, int] = {}
    for i in range(runs):
        out, home = work / "baseline.tar.zst", work / f"home{i}"
        steps = [("theirs", functools.partial(baseline, tree, out))]
        steps.insert(i % 2, ("ours", functools.partial(pack_tree, home, tree)))
        for label, step in steps:  # alternate which goes first
            (ours if label == "ours" else theirs).append(timed(step))
        sizes["baseline"] = out.stat().st_size
        sizes["corral"] = next((home / "artifacts").iterdir()).stat().st_size
        out.unlink()
        shutil.rmtree(home)
        app = Corral(Settings.from_env({"CORRAL_HOME": str(home)}))
        imports.append(timed(functools.partial(import_image, app, str(tree), f"bench{i}")))
        shutil.rmtree(home)
        o, t, m = ours[-1], theirs[-1], imports[-1]
        line = f"corral {o[0]:.2f}s (cpu {o[1]:.1f}s), tar|zstd {t[0]:.2f}s (cpu {t[1]:.1f}s)"
        print(f"run {i + 1}: {line}, import {m[0]:.2f}s", flush=True)
    report(tree, ours, theirs, imports, sizes)


def report(
    tree: Path,
    ours: list[tuple[float, float]],
    theirs: list[tuple[float, float]],
    imports: list[tuple[float, float]],
    sizes: dict[str, int],
) -> None:
    data = sum(p.stat().st_size for p in tree.rglob("*") if p.is_file()) / MIB
    o, t, m = (statistics.median(w for w, _ in x) for x in (ours, theirs, imports))
    oc, tc = (statistics.median(c for _, c in x) for x in (ours, theirs))
    c, b = sizes["corral"] / MIB, sizes["baseline"] / MIB
    print(f"tree: {data:.0f} MiB, cores: {len(os.sched_getaffinity(0))}, load {os.getloadavg()}")
    print(f"corral pack   median {o:.2f}s  {data / o:.0f} MiB/s  cpu {oc:.1f}s  -> {c:.0f} MiB")
    print(f"tar | zstd    median {t:.2f}s  {data / t:.0f} MiB/s  cpu {tc:.1f}s  -> {b:.0f} MiB")
    print(f"ratio wall (tar|zstd / corral): {t / o:.2f}x  (target >= 0.9)")
    print(f"ratio cpu  (tar|zstd / corral): {tc / oc:.2f}x")
    print(f"corral image import median {m:.2f}s  {data / m:.0f} MiB/s")


if __name__ == "__main__":
    main()
