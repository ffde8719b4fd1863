"""Benchmark: how soon the `corral` command answers (target < 0.2 s each).

    .venv/bin/python bench/cli_startup.py [--nodes 100] [--runs 10] [--markdown]

Wall and CPU time of the real console script as a subprocess (interpreter
start-up and imports included), median of --runs, for `corral --help` and
`corral node list` (table) on a home with --nodes nodes: read from the local
database (SQLite: with the standard library, `corral.store.nodelist`; then again
once the profile holds a sealed BMC password, whose key the list checks), and
through `--server` from a `corral serve` (HTTP on loopback only) on that home.
CPU time is the steadier figure on a shared machine; the load average is
printed with it. The server's own CPU time is not counted.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from inventory_scale import Bench

TARGET_S = 0.2
SERVING = re.compile(rb"corral serving at (http://\S+)")


@contextmanager
def serving(corral: str, home: Path) -> Iterator[str]:
    """`corral serve` on `home`, HTTP only, on a free loopback port; yields its URL."""
    log = home / "serve.log"
    argv = [corral, "serve", "--address", "127.0.0.1", "--http-port", "0", "--no-tls"]
    argv += ["--no-dhcp", "--no-tftp", "--no-dns", "--no-seeder"]
    env = {**os.environ, "CORRAL_HOME": str(home)}
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while not (found := SERVING.search(log.read_bytes())):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"corral serve did not start:\n{log.read_text()}")
            time.sleep(0.1)  # polling the log for the line, with a deadline
        yield found.group(1).decode()
    finally:
        proc.terminate()
        proc.wait(timeout=30)


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
        with serving(bench.corral, home) as url:
            remote = bench.median(lambda: home, "--server", url, "node", "list")
        password = work / "bmc-password"
        password.write_text("bench-only\n")
        bmc = ["--power-driver", "ipmi", "--bmc-password-file", str(password)]
        bench.run(home, "profile", "set", "compute", *bmc)
        sealed = bench.median(lambda: home, "node", "list")
        rows = [
            ("corral --help", bench.median(lambda: home, "--help")),
            (f"corral node list ({args.nodes} nodes, table)", listed),
            (f"corral node list ({args.nodes} nodes, table, sealed BMC password)", sealed),
            (f"corral --server URL node list ({args.nodes} nodes, table)", remote),
        ]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    head = f"{os.cpu_count()} cores, Python {platform.python_version()}, load {load}"
    print(head + "\n" if args.markdown else head)
    if args.markdown:
        print("| command | median wall (s) | wall min-max (s) | median CPU (s) | target < 0.2 s |")
        print("| --- | --- | --- | --- | --- |")
    for name, (median, times, cpu) in rows:
        verdict = "met" if median < TARGET_S else "MISSED"
        if args.markdown:
            spread = f"{min(times):.3f}-{max(times):.3f}"
            print(f"| `{name}` | {median:.3f} | {spread} | {cpu:.3f} | {verdict} |")
        else:
            print(
                f"{name}: median {median:.3f} s (min {min(times):.3f}), CPU {cpu:.3f} s: {verdict}"
            )


if __name__ == "__main__":
    main()
