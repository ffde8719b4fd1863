"""Benchmark: `corral power status 'n[0001-1000]'` against 1,000 simulated Redfish BMCs.

The BMCs are sushy-tools `--fake` systems spread over several emulator
processes (one emulator serves many systems, like a chassis manager). Every
node has its own system id; the redfish driver connects once per service.

    .venv/bin/python bench/power_status.py [--nodes 1000] [--emulators 4] [--concurrency 64]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.power.peers import fake_systems, sushy_emulator

from corral.app import Corral
from corral.config import Settings
from corral.inventory.index import Inventory
from corral.inventory.models import Node, PowerSettings


def populate(home: Path, urls: list[str], systems: list[list[dict[str, object]]], n: int) -> None:
    app = Corral(Settings.from_env({"CORRAL_HOME": str(home)}))

    def add(inv: Inventory) -> None:
        for i in range(n):
            e = i % len(urls)
            system = systems[e][i // len(urls)]
            power = PowerSettings(
                driver="redfish", address=urls[e], options={"system_id": str(system["uuid"])}
            )
            name = f"n{i + 1:04d}"
            inv.nodes[name] = Node(name=name, power=power)

    app.change(add)


def run(home: Path, n: int, concurrency: int) -> tuple[float, list[dict[str, object]]]:
    corral = Path(sys.executable).parent / "corral"
    argv = [str(corral), "power", "status", f"n[0001-{n:04d}]", "-o", "json"]
    argv += ["--concurrency", str(concurrency)]
    env = {**os.environ, "CORRAL_HOME": str(home)}
    start = time.monotonic()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    seconds = time.monotonic() - start
    if not done.stdout.strip():
        raise SystemExit(f"corral failed: {done.stderr}")
    return seconds, json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--emulators", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    per = -(-args.nodes // args.emulators)
    with (
        tempfile.TemporaryDirectory(prefix="corral-bench-") as tmp,
        contextlib.ExitStack() as stack,
    ):
        work = Path(tmp)
        systems = [fake_systems(per, prefix=f"{e:x}") for e in range(args.emulators)]
        urls = [
            stack.enter_context(sushy_emulator(work / f"emu{e}", systems[e]))
            for e in range(args.emulators)
        ]
        populate(work / "home", urls, systems, args.nodes)
        started = time.monotonic()
        for url, group in zip(urls, systems, strict=True):
            with urllib.request.urlopen(f"{url}/redfish/v1/Systems/{group[0]['uuid']}") as r:
                r.read()
        print(f"emulator warm-up (first request each): {time.monotonic() - started:.2f} s")
        for attempt in range(1, args.runs + 1):
            seconds, rows = run(work / "home", args.nodes, args.concurrency)
            ok = sum(1 for r in rows if r["ok"])
            states = sorted({str(r["result"]) for r in rows})
            print(
                f"run {attempt}: {len(rows)} nodes, {ok} ok, states {states}, "
                f"{seconds:.2f} s wall, concurrency {args.concurrency}, "
                f"{args.emulators} emulators x {per} systems"
            )


if __name__ == "__main__":
    main()
