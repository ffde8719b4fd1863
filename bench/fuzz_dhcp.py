"""DHCP fuzz at full size: seeded hostile datagrams into a real `corral serve`.

Usage: .venv/bin/python bench/fuzz_dhcp.py [--datagrams 1000000] [--rate 2000] [--seed 1]
       [--json]

Starts `corral serve --address 127.0.0.1 --dhcp-port P --no-tftp --no-seeder`
(DHCP bound to `lo`) on a scratch CORRAL_HOME with one network, a dynamic
range and one node, then sends datagrams from
`corral.protocols.dhcp.fuzz.DatagramMaker` (70% options-level DHCP messages
from 64 MACs, 15% truncated or bit-flipped, 15% random bytes) at `--rate`
per second. Every 10% it checks that the node still gets its renewal
acknowledged. Reports the server's RSS after a warm-up (10^4, or a tenth of
a smaller run) and at the end (VmRSS, VmHWM from /proc), the server's own
counters (logged at SIGTERM),
and crashes: the process gone before SIGTERM, a non-zero exit, or a
traceback in its log. Needs root only to bind the client port 68 on
127.83.0.5 for the liveness check.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

from corral.actions import LocalActions
from corral.app import Corral
from corral.config import Settings
from corral.protocols.dhcp.fuzz import DatagramMaker
from corral.testing.dhcp import renewal_answered

CORRAL = [sys.executable, "-m", "corral.cli"]
NODE_MAC = "52:54:00:83:00:05"
NODE_IP = "127.83.0.5"
WARMUP = 10_000


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_home(home: Path) -> None:
    os.environ["CORRAL_HOME"] = str(home)
    actions = LocalActions(Corral(Settings.from_env()))
    actions.add_network(
        {"name": "loop", "cidr": "127.0.0.0/8", "dynamic_range": "127.83.0.100-127.83.0.160"}
    )
    actions.add_profile({"name": "compute", "networks": ["loop"]})
    actions.add_nodes(["n05"], {"profiles": ["compute"]}, mac=NODE_MAC, ip=NODE_IP)


def memory(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of `pid`, KiB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0])
    return out


def wait_for_text(path: Path, text: str, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in path.read_text(errors="replace"):
            return
        if proc.poll() is not None:
            raise SystemExit(f"corral serve exited:\n{path.read_text()}")
        time.sleep(0.1)
    raise SystemExit(f"corral serve did not start:\n{path.read_text()}")


def send(
    sock: socket.socket, target: tuple[str, int], make: DatagramMaker, n: int, rate: float
) -> None:
    """`n` datagrams at `rate` per second (paced in bursts of 50)."""
    start = time.monotonic()
    for i in range(n):
        sock.sendto(make(), target)
        if i % 50 == 49:
            ahead = start + (i + 1) / rate - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)


def counters(log: str) -> dict[str, int]:
    found = re.findall(r"dhcp stopped: DhcpCounters\(([^)]*)\)", log)
    if not found:
        return {}
    return {k: int(v) for k, v in (kv.split("=") for kv in found[-1].split(", "))}


def run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="corral-fuzz-") as tmp:
        home = Path(tmp) / "home"
        make_home(home)
        log_path = Path(tmp) / "serve.log"
        port = free_port()
        argv = [
            *CORRAL, "serve", "-v", "--address", "127.0.0.1", "--dhcp-port", str(port),
            "--http-port", str(free_port()), "--no-tftp", "--no-dns", "--no-seeder",
        ]  # fmt: skip
        env = {**os.environ, "CORRAL_HOME": str(home)}
        with log_path.open("wb") as log:
            proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            wait_for_text(log_path, "corral serving at", proc, 60)
            target = ("127.0.0.1", port)
            make = DatagramMaker(
                random.Random(args.seed), IPv4Address("127.0.0.1"), IPv4Network("127.83.0.0/24")
            )
            checks: list[bool] = []
            started = time.monotonic()
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                warmup = min(WARMUP, args.datagrams // 10)
                send(sock, target, make, warmup, args.rate)
                checks.append(renewal_answered(target, NODE_MAC, NODE_IP))
                before = memory(proc.pid)
                left = args.datagrams - warmup
                step = max(1, left // 10)
                while left > 0:
                    n = min(step, left)
                    send(sock, target, make, n, args.rate)
                    left -= n
                    checks.append(renewal_answered(target, NODE_MAC, NODE_IP))
                    if not args.json:
                        print(f"  {args.datagrams - left:>9,} sent, RSS {memory(proc.pid)}")
            elapsed = time.monotonic() - started
            after = memory(proc.pid)
            alive = proc.poll() is None
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        text = log_path.read_text(errors="replace")
        tracebacks = text.count("Traceback") + text.count("Exception in callback")
        return {
            "datagrams": args.datagrams,
            "rate": args.rate,
            "seed": args.seed,
            "seconds": round(elapsed, 1),
            "rss_kib_before": before["VmRSS"],
            "rss_kib_after": after["VmRSS"],
            "hwm_kib": after["VmHWM"],
            "crashes": int(not alive) + int(code != 0) + tracebacks,
            "liveness_checks_passed": f"{sum(checks)}/{len(checks)}",
            "exit_code": code,
            "server_counters": counters(text),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datagrams", type=int, default=1_000_000)
    parser.add_argument("--rate", type=float, default=2000.0, help="datagrams per second")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = run(args)
    if args.json:
        print(json.dumps(result, indent=1))
        return
    for key, value in result.items():
        print(f"{key:>24}: {value}")


if __name__ == "__main__":
    main()
