"""Benchmark: the inventory commands with 10,000 nodes on SQLite (target < 2 s each).

    .venv/bin/python bench/inventory_scale.py [--nodes 10000] [--runs 3] [--markdown]

Each figure is the wall time of the real `corral` console script as a
subprocess (interpreter start-up and imports included), median of --runs, each
run on its own scratch CORRAL_HOME where the command changes state:

- `corral node add 'n[00001-NNNNN]' --profile compute` into a home with one
  network (/16) and one profile;
- `corral node list -o json` of the NNNNN nodes;
- `corral apply -f cluster.yaml` of a NNNNN-node file (written by `corral
  export`) into a fresh home, and again into a home that already matches it;
- `corral node list` as a table;
- for reference (no target): `corral export`.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

TARGET_S = 2.0
Row = tuple[str, float, list[float], float, bool]
ROOT = Path(__file__).resolve().parents[1]


def corral_bin() -> str:
    local = ROOT / ".venv" / "bin" / "corral"
    found = str(local) if local.exists() else shutil.which("corral")
    if found is None:
        sys.exit("corral is not installed: run make venv")
    return found


class Bench:
    def __init__(self, work: Path, nodes: int, runs: int) -> None:
        self.work = work
        self.nodes = nodes
        self.runs = runs
        self.corral = corral_bin()
        self.homes = 0
        self.cpu: list[float] = []  # CPU seconds of each run (less noisy on a busy machine)
        self.pattern = f"n[{1:0{len(str(nodes))}d}-{nodes}]"

    def run(self, home: Path, *args: str, stdout: Path | None = None) -> float:
        env = {**os.environ, "CORRAL_HOME": str(home)}
        env.pop("CORRAL_DATABASE_URL", None)
        out = open(stdout, "wb") if stdout else subprocess.DEVNULL  # noqa: SIM115
        try:
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            subprocess.run(
                [self.corral, *args], env=env, stdout=out, stderr=subprocess.PIPE, check=True
            )
            wall = time.perf_counter() - start
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            self.cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
            return wall
        finally:
            if stdout:
                out.close()  # type: ignore[union-attr]

    def fresh_home(self, with_profile: bool = True) -> Path:
        self.homes += 1
        home = self.work / f"home{self.homes}"
        if with_profile:
            net = ["--cidr", "10.64.0.0/16", "--gateway", "10.64.0.1"]
            net += ["--dynamic-range", "10.64.255.0-10.64.255.254"]
            self.run(home, "network", "add", "prov", *net)
            prof = ["--network", "prov", "--image", "rocky9"]
            prof += ["--kernel-args", "console=ttyS0,115200 quiet"]
            self.run(home, "profile", "add", "compute", *prof)
        return home

    def median(self, prepare: Callable[[], Path], *args: str) -> tuple[float, list[float], float]:
        """Median wall time, every wall time, median CPU time of `corral ARGS`."""
        times, cpu = [], []
        for _ in range(self.runs):
            home = prepare()
            times.append(self.run(home, *args))
            cpu.append(self.cpu[-1])
        return statistics.median(times), times, statistics.median(cpu)

    def all(self) -> list[Row]:
        rows: list[Row] = []
        add = self.median(self.fresh_home, "node", "add", self.pattern, "--profile", "compute")
        rows.append((f"corral node add '{self.pattern}' --profile compute", *add, True))
        full = self.work / f"home{self.homes}"  # the last home now has every node
        listed = self.median(lambda: full, "node", "list", "-o", "json")
        rows.append(("corral node list -o json", *listed, True))
        cluster = self.work / "cluster.yaml"
        self.run(full, "export", stdout=cluster)
        applied = self.median(lambda: self.fresh_home(False), "apply", "-f", str(cluster))
        rows.append(
            (f"corral apply -f cluster.yaml ({self.nodes} nodes, fresh home)", *applied, True)
        )
        again = self.median(lambda: full, "apply", "-f", str(cluster))
        rows.append(
            (f"corral apply -f cluster.yaml ({self.nodes} nodes, no changes)", *again, True)
        )
        table = self.median(lambda: full, "node", "list")
        rows.append(("corral node list (table)", *table, True))
        exported = self.median(lambda: full, "export")
        rows.append(("corral export (for reference)", *exported, False))
        return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--markdown", action="store_true", help="print a RESULTS.md table")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="corral-bench-"))
    try:
        rows = Bench(work, args.nodes, args.runs).all()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    missed = [row[0] for row in rows if row[4] and row[1] >= TARGET_S]
    if args.markdown:
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        print(f"{os.cpu_count()} cores, Python {platform.python_version()}, load {load}\n")
        print("| command | median wall (s) | runs (s) | median CPU (s) | target < 2 s |")
        print("| --- | --- | --- | --- | --- |")
        for name, median, times, cpu, targeted in rows:
            verdict = ("met" if median < TARGET_S else "MISSED") if targeted else "-"
            runs = ", ".join(f"{t:.2f}" for t in times)
            print(f"| `{name}` | {median:.2f} | {runs} | {cpu:.2f} | {verdict} |")
    else:
        for name, median, times, cpu, targeted in rows:
            mark = "" if not targeted else (" ok" if median < TARGET_S else " MISSED")
            runs = ", ".join(f"{t:.2f}" for t in times)
            print(f"{median:6.2f} s (cpu {cpu:.2f})  {name}  ({runs}){mark}")
    sys.exit(1 if missed else 0)


if __name__ == "__main__":
    main()
