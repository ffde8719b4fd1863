"""Markdown tables of bench/provision/results.jsonl.

python bench/provision/table.py LABEL...            every run of those labels
python bench/provision/table.py --per-n LABEL...    per N and configuration: median
                                                    and spread of the runs the CPU
                                                    flag lets through
"""

from __future__ import annotations

import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results.jsonl"


def flagged(r: dict[str, object]) -> bool:
    """Above the CPU flag after the start (90%; older rows: their whole run, which
    kept a 99% threshold, so their flag is recomputed)."""
    return float(r.get("cpu_max_steady", r["cpu_max"])) > 0.9  # type: ignore[arg-type]


def load(labels: set[str]) -> list[dict[str, object]]:
    rows = [json.loads(line) for line in RESULTS.read_text().splitlines()]
    return [r for r in rows if not labels or r["label"] in labels]


def config_of(r: dict[str, object]) -> str:
    """Rows written before configurations existed name mode and client only."""
    return str(r.get("config") or (r["mode"] if r["mode"] == "http" else f"?:{r['client']}"))


def row(r: dict[str, object]) -> str:
    args = " ".join(str(a) for a in r["server_args"]) or "-"  # type: ignore[attr-defined]
    cells = [
        r["label"], r["n"], config_of(r), f"{r['server_mbit']:g}", args,
        r["time_ratio"], r["median_ratio"], r["egress_ratio"], f"{r['verified']}/{r['n']}",
        f"{r.get('cpu_max_steady', r['cpu_max'])}" + (" (flagged)" if flagged(r) else ""),
    ]  # fmt: skip
    return "| " + " | ".join(str(c) for c in cells) + " |"


def spread(values: list[float]) -> str:
    """`median (min-max)`, or one value."""
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"


def per_n(rows: list[dict[str, object]], labelled: bool = False) -> None:
    """One row per N, one column per configuration: time/limit and egress/image."""
    configs: list[str] = []
    cells: dict[tuple[int, str], list[dict[str, object]]] = defaultdict(list)
    for r in rows:
        config = f"{r['label']}:{config_of(r)}" if labelled else config_of(r)
        if config not in configs:
            configs.append(config)
        cells[(int(r["n"]), config)].append(r)  # type: ignore[call-overload]
    print("Time of the last node / limit; server egress / image: median (min-max) of the")
    print("runs below the CPU flag (kept/all); a run that did not finish counts as missing.\n")
    print("| N | " + " | ".join(configs) + " |")
    print("| --- " * (len(configs) + 1) + "|")
    for n in sorted({n for n, _ in cells}):
        out = [str(n)]
        for config in configs:
            runs = cells.get((n, config), [])
            kept = [r for r in runs if not flagged(r)]
            times = [float(r["time_ratio"]) for r in kept if r["time_ratio"]]  # type: ignore[arg-type]
            egress = [float(r["egress_ratio"]) for r in kept]  # type: ignore[arg-type]
            if not runs:
                out.append("-")
            elif not times:
                out.append(f"none kept (0/{len(runs)})")
            else:
                out.append(f"{spread(times)} / {spread(egress)} ({len(kept)}/{len(runs)})")
        print("| " + " | ".join(out) + " |")


def main() -> None:
    argv = sys.argv[1:]
    if argv[:1] == ["--per-n"]:
        per_n(load(set(argv[1:])))
        return
    if argv[:1] == ["--per-n-labelled"]:
        wanted = set(argv[1:])
        rows = [r for r in load(set()) if f"{r['label']}:{config_of(r)}" in wanted]
        per_n(rows, labelled=True)
        return
    print("| label | N | configuration | server Mbit/s | server options | time/limit (all) "
          "| time/limit (median) | egress/image | verified | CPU busiest second |")  # fmt: skip
    print("| --- " * 10 + "|")
    for r in load(set(argv)):
        print(row(r))


if __name__ == "__main__":
    main()
