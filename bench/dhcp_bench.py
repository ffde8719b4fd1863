"""DHCP DORA storm: corral serve vs dnsmasq, driven by Kea's perfdhcp (root only).

Usage: .venv/bin/python bench/dhcp_bench.py [--rates 250 500 1000] [--clients 1000]
       [--period 8] [--runs 3] [--json]

Topology (corral.lab.netns.Topology, removed even on failure): a server namespace
with bridge br0 = 10.80.0.1/16, a client namespace on it over a veth with
10.80.0.2/16. perfdhcp runs in the client namespace (`-l eth0`); it acts as a
relay (giaddr 10.80.0.2, port 67), so replies are unicast to it and the shared
neighbour table (../shared/notes/netboot-lab.md) is not involved. Each run gets a
fresh server: `corral serve --interface br0 --no-tftp` on a copy of a scratch
CORRAL_HOME holding one network (10.80.0.0/16, dynamic range 10.80.1.0-10.80.200.255),
and `dnsmasq --no-daemon --conf-file=/dev/null` on br0 with the same range (no DNS,
--no-ping and --quiet-dhcp: corral does not ping or log per packet; lease-max raised
from its default of 1,000). The two alternate which goes first. Both are stopped
by their PIDs. Figures per offered rate: leases/s (ACKs received / period), drops
(DISCOVER-OFFER + REQUEST-ACK), median of the runs, and the corral / dnsmasq ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from corral.lab.netns import Topology, ns_argv

SERVER_IP = "10.80.0.1"
CIDR = "10.80.0.0/16"
RANGE = ("10.80.1.0", "10.80.200.255")
CORRAL = [sys.executable, "-m", "corral.cli"]


@dataclass
class Run:
    server: str
    rate: int
    leases_per_s: float
    exchanges_per_s: float
    discover_sent: int
    offers: int
    acks: int
    drops: int


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def wait_for(log: Path, text: str, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log.exists() and text in log.read_text(errors="replace"):
            return
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    raise RuntimeError(f"server did not start:\n{log.read_text(errors='replace')}")


def make_home(home: Path) -> None:
    env = {**os.environ, "CORRAL_HOME": str(home)}
    subprocess.run([*CORRAL, "init"], env=env, check=True, capture_output=True)
    add = ["network", "add", "bench", "--cidr", CIDR, "--gateway", SERVER_IP]
    add += ["--dynamic-range", f"{RANGE[0]}-{RANGE[1]}"]
    subprocess.run([*CORRAL, *add], env=env, check=True, capture_output=True)


@contextmanager
def corral_server(netns: str, template: Path, work: Path) -> Iterator[None]:
    home = work / "home"
    shutil.rmtree(home, ignore_errors=True)
    shutil.copytree(template, home)
    log = work / "corral.log"
    log.unlink(missing_ok=True)
    argv = [*CORRAL, "serve", "--interface", "br0", "--no-tftp", "--http-port", "9480"]
    env = {**os.environ, "CORRAL_HOME": str(home)}
    with log.open("wb") as out:
        proc = subprocess.Popen(ns_argv(netns, argv), stdout=out, stderr=out, env=env)
    try:
        wait_for(log, "corral serving at", proc, 30)
        yield
    finally:
        stop(proc)


@contextmanager
def dnsmasq_server(netns: str, work: Path) -> Iterator[None]:
    leases = work / "dnsmasq.leases"
    leases.unlink(missing_ok=True)
    log = work / "dnsmasq.log"
    argv = [
        "dnsmasq",
        "--no-daemon",
        "--conf-file=/dev/null",
        "--port=0",
        "--interface=br0",
        "--bind-interfaces",
        f"--dhcp-range={RANGE[0]},{RANGE[1]},255.255.0.0,1h",
        "--dhcp-lease-max=100000",
        f"--dhcp-leasefile={leases}",
        "--dhcp-authoritative",
        "--no-ping",
        "--quiet-dhcp",
        f"--pid-file={work / 'dnsmasq.pid'}",
    ]
    with log.open("wb") as out:
        proc = subprocess.Popen(ns_argv(netns, argv), stdout=out, stderr=out)
    try:
        wait_for(log, "IP range", proc, 10)
        yield
    finally:
        stop(proc)


def section(text: str, name: str) -> str:
    start = text.index(f"***Statistics for: {name}***")
    end = text.find("***Statistics for:", start + 1)
    return text[start : end if end > 0 else len(text)]


def number(pattern: str, text: str) -> float:
    found = re.search(pattern, text)
    if found is None:
        raise RuntimeError(f"perfdhcp output lacks {pattern!r}:\n{text}")
    return float(found.group(1))


def perfdhcp(netns: str, server: str, rate: int, clients: int, period: int) -> Run:
    argv = ["perfdhcp", "-4", "-l", "eth0", "-r", str(rate), "-R", str(clients)]
    # -W: after the period, a second for the replies still in flight (no new requests);
    # without it every exchange in flight at the cut counted as dropped, so the drops
    # measured latency x rate, not loss (about 30 at 250/s for corral, 2026-12-04)
    argv += ["-p", str(period), "-W", "1000000", SERVER_IP]
    proc = subprocess.run(
        ns_argv(netns, argv), capture_output=True, text=True, timeout=period + 30, check=False
    )
    out = proc.stdout + proc.stderr
    do, ra = section(out, "DISCOVER-OFFER"), section(out, "REQUEST-ACK")
    acks = int(number(r"received packets: (\d+)", ra))
    return Run(
        server=server,
        rate=rate,
        leases_per_s=acks / period,
        exchanges_per_s=number(r"Rate: ([\d.]+)", out),
        discover_sent=int(number(r"sent packets: (\d+)", do)),
        offers=int(number(r"received packets: (\d+)", do)),
        acks=acks,
        drops=int(number(r"drops: (\d+)", do) + number(r"drops: (\d+)", ra)),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rates", type=int, nargs="+", default=[250, 500, 1000])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--period", type=int, default=8)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="also print every run as JSON")
    parser.add_argument(
        "--up-before",
        type=float,
        default=0.0,
        help="seconds each server has been up when the storm begins (0: at once, the "
        "cold start included; nodes usually power on against a server already up)",
    )
    args = parser.parse_args()
    for tool in ("perfdhcp", "dnsmasq"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} not found: apt-get install kea-admin dnsmasq-base")
    runs: list[Run] = []
    with tempfile.TemporaryDirectory() as tmp, Topology("dbench") as topo:
        work = Path(tmp)
        template = work / "template"
        make_home(template)
        srv = topo.namespace("srv")
        topo.bridge(srv, "br0", f"{SERVER_IP}/16")
        cli = topo.namespace("cli")
        topo.attach(cli, srv, "br0", address="10.80.0.2/16")
        for i in range(args.runs):
            for rate in args.rates:
                order = ["corral", "dnsmasq"] if (i + rate) % 2 == 0 else ["dnsmasq", "corral"]
                for name in order:
                    server = (
                        corral_server(srv, template, work)
                        if name == "corral"
                        else dnsmasq_server(srv, work)
                    )
                    with server:
                        time.sleep(args.up_before)  # the scenario, not a synchronisation
                        run = perfdhcp(cli, name, rate, args.clients, args.period)
                    runs.append(run)
                    if args.json:
                        print(json.dumps(asdict(run)), flush=True)
    report(runs, args)


def report(runs: list[Run], args: argparse.Namespace) -> None:
    print(
        f"perfdhcp -R {args.clients} -p {args.period}, {args.runs} runs each "
        "(medians; drops = DISCOVER-OFFER + REQUEST-ACK)"
    )
    print(
        "| offered DORA/s | corral leases/s | corral drops | dnsmasq leases/s | "
        "dnsmasq drops | ratio corral / dnsmasq |"
    )
    print("| --- | --- | --- | --- | --- | --- |")
    for rate in args.rates:
        ours = [r for r in runs if r.rate == rate and r.server == "corral"]
        theirs = [r for r in runs if r.rate == rate and r.server == "dnsmasq"]
        o_rate = statistics.median(r.leases_per_s for r in ours)
        t_rate = statistics.median(r.leases_per_s for r in theirs)
        o_drops = statistics.median(r.drops for r in ours)
        t_drops = statistics.median(r.drops for r in theirs)
        ratio = o_rate / t_rate if t_rate else float("nan")
        print(
            f"| {rate} | {o_rate:.0f} | {o_drops:.0f} | {t_rate:.0f} | {t_drops:.0f} | "
            f"{ratio:.2f} |"
        )


if __name__ == "__main__":
    main()
