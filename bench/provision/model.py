"""Scale model of a boot storm, calibrated on bench/provision runs.

    python bench/provision/model.py LABEL CONFIG [INITRAMFS_MB]

CONFIG as in run.py (`corral:fetch`, `corral:aria2c`, ...); INITRAMFS_MB: the size
every node downloads today (bench/initramfs_size.py).

Phases, one after the other (an upper bound: in a real storm they overlap):

1. boot artifacts over HTTP: every node fetches the kernel and the initramfs from
   the server, so they take N x (kernel + initramfs) / server link (or one node's
   link, if that is slower);
2. the image over the swarm: (image / node link) x k(N), with
   k(N) = k1 + c x log2(N) fitted (least squares) on the runs of LABEL with
   configuration CONFIG in results.jsonl that the CPU flag lets through (time of
   the last node / limit): each doubling of N adds about one more hop for the
   last pieces to travel;
3. unpack: image / unpack rate on the node (zstd + tar into tmpfs), not hidden
   behind the download (corral.overlap=1 would hide it; off by default).

Firmware POST, DHCP and iPXE are not in the model (Luna's figures include POST).
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results.jsonl"
GB = 1e9
NODE_BPS = 1e9 / 8  # 1 GbE
SERVER_BPS = 10e9 / 8  # 10 GbE
IMAGE = 2 * GB
KERNEL = 8e6
INITRAMFS_TARGET = 8e6  # issue 13's budget
UNPACK_BPS = 400e6  # zstd -d | tar -x of a packed image, one core (an assumption)
SIZES = (256, 1024, 10_000)


def fit(label: str, config: str) -> tuple[float, float, list[tuple[int, float]]]:
    """(k1, c) of k(N) = k1 + c log2 N over the label's runs of that configuration."""
    points = []
    for line in RESULTS.read_text().splitlines():
        r = json.loads(line)
        ours = (r["label"], r.get("config")) == (label, config)
        if ours and r["time_ratio"] and float(r.get("cpu_max_steady", r["cpu_max"])) <= 0.9:
            points.append((int(r["n"]), float(r["time_ratio"])))
    if len(points) < 2:
        raise SystemExit(f"need two unflagged runs or more of {label!r} {config} in {RESULTS}")
    xs = [math.log2(n) for n, _ in points]
    ys = [k for _, k in points]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxx = sum((x - mx) ** 2 for x in xs) or 1.0
    c = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx
    return my - c * mx, c, points


def predict(n: int, k1: float, c: float, initramfs: float) -> dict[str, float]:
    artifacts = max(n * (KERNEL + initramfs) / SERVER_BPS, (KERNEL + initramfs) / NODE_BPS)
    limit = IMAGE / NODE_BPS
    swarm = limit * (k1 + c * math.log2(n))
    unpack = IMAGE / UNPACK_BPS
    total = artifacts + swarm + unpack
    unicast = n * IMAGE / SERVER_BPS
    return {"artifacts": artifacts, "swarm": swarm, "unpack": unpack, "total": total,
            "http_unicast": unicast}  # fmt: skip


def main() -> None:
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    label, config = sys.argv[1], sys.argv[2]
    today = float(sys.argv[3]) * 1e6 if len(sys.argv) > 3 else 12.44e6
    k1, c, points = fit(label, config)
    print(f"calibration ({label}, {config}): "
          f"k(N) = {k1:.3f} + {c:.3f} log2 N from {sorted(points)}")  # fmt: skip
    head = f"boot artifacts ({today / 1e6:.1f} MB / 8 MB initramfs)"
    print(f"| N | {head} | image over the swarm | unpack "
          "| total without POST (today / 8 MB) | image by HTTP unicast alone |")  # fmt: skip
    print("| --- | --- | --- | --- | --- | --- |")
    for n in SIZES:
        now = predict(n, k1, c, today)
        target = predict(n, k1, c, INITRAMFS_TARGET)
        cells = [f"{n:,}", f"{now['artifacts']:.0f} s / {target['artifacts']:.0f} s",
                 f"{now['swarm']:.0f} s", f"{now['unpack']:.0f} s",
                 f"{now['total']:.0f} s / {target['total']:.0f} s",
                 f"{now['http_unicast']:.0f} s"]  # fmt: skip
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
