"""Benchmark: how soon the `corral` command answers (target < 0.2 s each).

    .venv/bin/python bench/cli_startup.py [--nodes 100] [--runs 10] [--markdown]

Wall and CPU time of the real console script as a subprocess (interpreter
start-up and imports included), median of --runs, for `corral --help` and
`corral node list` (table) on a home with --nodes nodes. CPU time is the
steadier figure on a shared machine; the load average is printed with it.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from inventory_scale import Bench

TARGET_S = 0.2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=100)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--markdown", action="store_true", help="print a RESULTS.md table")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="corral-bench-"))
    try:
        bench = Bench(work, args.nodes, args.runs)
        home = bench.fresh_home()
        bench.run(home, "node", "add", bench.pattern, "--profile", "compute")
        listed = bench.median(lambda: home, "node", "list")
        rows = [
            ("corral --help", bench.median(lambda: home, "--help")),
            (f"corral node list ({args.nodes} nodes, table)", listed),
        ]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    head = f"{os.cpu_count()} cores, Python {platform.python_version()}, load {load}"
    print(head + "\n" if args.markdown else head)
    if args.markdown:
        print("| command | median wall (s) | min wall (s) | median CPU (s) | target < 0.2 s |")
        print("| --- | --- | --- | --- | --- |")
    for name, (median, times, cpu) in rows:
        verdict = "met" if median < TARGET_S else "MISSED"
        if args.markdown:
            print(f"| `{name}` | {median:.3f} | {min(times):.3f} | {cpu:.3f} | {verdict} |")
        else:
            print(
                f"{name}: median {median:.3f} s (min {min(times):.3f}), CPU {cpu:.3f} s: {verdict}"
            )


if __name__ == "__main__":
    main()
