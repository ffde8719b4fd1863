"""DNS for the cluster's names: corral serve vs dnsmasq, driven by dnsperf.

Usage: .venv/bin/python bench/dns_bench.py [--nodes 1000] [--seconds 10] [--runs 3] [--json]

Both servers answer the same names on 127.0.0.1 (different ports): corral from an
inventory of `--nodes` nodes (`corral serve --no-dhcp --no-tftp --no-seeder
--dns-port P`), dnsmasq from a hosts file written from corral's own zone
(`--addn-hosts`, `--no-resolv`: neither forwards). The query file asks every node's
name (A) and every address back (PTR), in order. dnsperf runs at full speed
(100 outstanding queries) after one untimed pass over the file; each server is
pinned to core 1 and dnsperf to core 0 (taskset), so both servers get one core and
the client never competes with them.
The two alternate which goes first. Figures: queries/s and lost queries (median of
the runs, with every run), the ratio corral / dnsmasq, and the server's CPU share
of its core. Both servers are stopped by their PIDs.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from corral.app import Corral
from corral.clusterdns.zone import build_zone
from corral.config import Settings

CORRAL = [sys.executable, "-m", "corral.cli"]


@dataclass
class Run:
    server: str
    qps: float
    lost: int
    sent: int
    server_cpu: float  # share of one core while dnsperf ran


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def answers(port: int, name: str) -> bool:
    argv = ["dig", "@127.0.0.1", "-p", str(port), "+short", "+time=1", "+tries=1", name]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    return done.returncode == 0 and not done.stdout.startswith(";")


@contextmanager
def running(argv: list[str], port: int, probe: str, env: dict[str, str]) -> Iterator[int]:
    proc = subprocess.Popen(
        ["taskset", "-c", "1", *argv], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 30
        while not answers(port, probe):
            if proc.poll() is not None or time.monotonic() > deadline:
                err = proc.stderr.read().decode() if proc.stderr else ""
                raise RuntimeError(f"{argv[0]} did not answer: {err}")
        yield proc.pid
    finally:
        stop(proc)


def make_home(home: Path, nodes: int) -> dict[str, str]:
    env = {**os.environ, "CORRAL_HOME": str(home)}
    run = [*CORRAL]
    subprocess.run([*run, "init"], env=env, check=True, capture_output=True)
    net = ["network", "add", "bench", "--cidr", "10.90.0.0/16"]
    subprocess.run([*run, *net], env=env, check=True, capture_output=True)
    add = ["node", "add", f"n[{1:05d}-{nodes:05d}]", "--network", "bench"]
    subprocess.run([*run, *add], env=env, check=True, capture_output=True)
    return env


def zone_files(env: dict[str, str], work: Path) -> tuple[Path, Path, str]:
    """A dnsmasq hosts file and a dnsperf query file, both from corral's zone."""
    corral = Corral(Settings.from_env(env))
    zone = build_zone(corral.read())
    hosts, queries = work / "hosts", work / "queries"
    host_lines, query_lines = [], []
    for name, ips in sorted(zone.addresses.items()):
        for ip in ips:
            host_lines.append(f"{ip} {name.to_text(omit_final_dot=True)}")
    for name in sorted(zone.addresses):
        query_lines.append(f"{name.to_text(omit_final_dot=True)} A")
    for ptr in sorted(zone.pointers):
        query_lines.append(f"{ptr.to_text(omit_final_dot=True)} PTR")
    hosts.write_text("\n".join(host_lines) + "\n")
    queries.write_text("\n".join(query_lines) + "\n")
    return hosts, queries, str(min(zone.addresses)).rstrip(".")


def dnsperf(port: int, queries: Path, seconds: int) -> tuple[float, int, int]:
    argv = ["taskset", "-c", "0", "dnsperf", "-s", "127.0.0.1", "-p", str(port)]
    argv += ["-d", str(queries), "-l", str(seconds), "-q", "100"]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    qps = float(re.search(r"Queries per second:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    sent = int(re.search(r"Queries sent:\s+(\d+)", out).group(1))  # type: ignore[union-attr]
    lost = int(re.search(r"Queries lost:\s+(\d+)", out).group(1))  # type: ignore[union-attr]
    return qps, lost, sent


def warm(port: int, queries: Path) -> None:
    """Ask every question once, untimed: the figures are for a server in steady state."""
    argv = ["taskset", "-c", "0", "dnsperf", "-s", "127.0.0.1", "-p", str(port)]
    subprocess.run([*argv, "-d", str(queries), "-n", "1"], capture_output=True, check=True)


def measure(name: str, pid: int, port: int, queries: Path, seconds: int) -> Run:
    warm(port, queries)
    before, start = cpu_seconds(pid), time.monotonic()
    qps, lost, sent = dnsperf(port, queries, seconds)
    share = (cpu_seconds(pid) - before) / (time.monotonic() - start)
    return Run(name, qps, lost, sent, share)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="also print every run as JSON")
    args = parser.parse_args()
    for tool in ("dnsperf", "dnsmasq", "dig", "taskset"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} not found: apt-get install dnsperf dnsmasq-base bind9-dnsutils")
    runs: list[Run] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        env = make_home(work / "home", args.nodes)
        hosts, queries, probe = zone_files(env, work)
        for i in range(args.runs):
            for name in ["corral", "dnsmasq"] if i % 2 == 0 else ["dnsmasq", "corral"]:
                port = free_port()
                if name == "corral":
                    argv = [*CORRAL, "serve", "--no-dhcp", "--no-tftp", "--no-seeder"]
                    argv += ["--address", "127.0.0.1", "--http-port", "0", "--dns-port", str(port)]
                else:
                    argv = ["dnsmasq", "--keep-in-foreground", "--no-resolv", "--no-hosts"]
                    argv += [f"--addn-hosts={hosts}", "--listen-address=127.0.0.1"]
                    argv += ["--bind-interfaces", f"--port={port}", "--user=root"]
                    argv += ["--cache-size=10000", f"--pid-file={work / 'dnsmasq.pid'}"]
                with running(argv, port, probe, env) as pid:
                    run = measure(name, pid, port, queries, args.seconds)
                runs.append(run)
                if args.json:
                    print(json.dumps(asdict(run)), flush=True)
    report(runs, args)


def report(runs: list[Run], args: argparse.Namespace) -> None:
    load = os.getloadavg()[0]
    print(
        f"dnsperf -q 100 -l {args.seconds}, {args.nodes} nodes, {args.runs} runs, load {load:.1f}"
    )
    print("| server | median q/s | runs (q/s) | lost | server CPU (of its core) |")
    print("| --- | --- | --- | --- | --- |")
    medians = {}
    for name in ("corral", "dnsmasq"):
        mine = [r for r in runs if r.server == name]
        medians[name] = statistics.median(r.qps for r in mine)
        each = ", ".join(f"{r.qps:.0f}" for r in mine)
        lost = sum(r.lost for r in mine)
        cpu = statistics.median(r.server_cpu for r in mine)
        print(f"| {name} | {medians[name]:.0f} | {each} | {lost} | {cpu:.0%} |")
    print(f"\nratio corral / dnsmasq: {medians['corral'] / medians['dnsmasq']:.2f}")


if __name__ == "__main__":
    main()
