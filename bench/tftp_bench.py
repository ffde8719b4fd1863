"""64 concurrent atftp fetches of ipxe.efi: corral's TFTP server vs tftpd-hpa's in.tftpd.

Usage: .venv/bin/python bench/tftp_bench.py [--clients 64] [--rounds 5] [--in-tftpd PATH]
       [--blksize 1428] [--windowsize 1] [--workers 0 2]

Both servers serve the same temporary root on loopback in the same run; in.tftpd
runs in the foreground (-L) on a free port and is stopped by its PID afterwards.
corral runs once per `--workers` count (0: every transfer in the listener's
process; N: N worker processes), so before and after are measured in the same
minutes. Reports the median wall time of one round (all clients fetching at
once), the spread (min-max), corral's CPU per MB (its loop thread and workers;
in.tftpd's forks are not counted anywhere, so n/a), how idle the machine was
during the rounds (0%: the clients and the server used every core, so CPU per
block decides, not parallelism) and the load average before each server's rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from corral.protocols.tftp import TftpRoot
from corral.services.tftp import TftpServer

IPXE_EFI = Path("/usr/lib/ipxe/ipxe.efi")


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


TICK = os.sysconf("SC_CLK_TCK")


def proc_cpu(pid: int) -> float:
    """CPU seconds of `pid` (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    utime, stime = (int(f) for f in fields[11:13])
    return (utime + stime) / TICK


@dataclass
class Served:
    port: int
    cpu: Callable[[], float] | None  # the server's CPU seconds so far (all its processes)


@contextmanager
def corral_server(root: Path, workers: int) -> Iterator[Served]:
    loop = asyncio.new_event_loop()
    # every atftp client comes from 127.0.0.1: lift the per-client limit (8) for the bench
    # workers=0 passes nothing, so the bench also runs against a TftpServer without workers
    extra: dict[str, Any] = {"workers": workers} if workers else {}
    server = TftpServer(TftpRoot(root), "127.0.0.1", 0, max_per_client=1024, **extra)
    loop.run_until_complete(server.start())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    assert thread.ident is not None
    clock = time.pthread_getcpuclockid(thread.ident)

    def cpu() -> float:
        pool = getattr(server, "pool", None)
        pids = pool.pids if pool else []
        return time.clock_gettime(clock) + sum(proc_cpu(pid) for pid in pids)

    try:
        yield Served(server.address[1], cpu)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.run_until_complete(server.stop())
        loop.close()


@contextmanager
def in_tftpd(binary: str, root: Path) -> Iterator[Served]:
    port = free_udp_port()
    argv = [binary, "-L", "-s", str(root), "-a", f"127.0.0.1:{port}", "-u", "root"]
    proc = subprocess.Popen(argv)
    group = cpuacct_group(proc.pid)  # its forks (one per transfer) are counted there
    time.sleep(0.3)
    try:
        if proc.poll() is not None:
            raise RuntimeError(f"in.tftpd exited with {proc.returncode}")
        yield Served(
            port, (lambda: int((group / "cpuacct.usage").read_text()) / 1e9) if group else None
        )
    finally:
        proc.terminate()
        proc.wait(10)
        if group:
            (CPUACCT / "tasks").write_text(str(os.getpid()))  # nothing left in it: removable
            group.rmdir()


CPUACCT = Path("/sys/fs/cgroup/cpuacct")


def cpuacct_group(pid: int) -> Path | None:
    """A cgroup-v1 cpuacct group holding `pid` (and so every process it forks), or None
    where there is none to make (cgroup v2 only, not root): in.tftpd does not reap its
    forks into its own CPU times, so a group is the only way to count them."""
    if not (CPUACCT / "tasks").is_file():
        return None
    group = CPUACCT / f"corral-bench-tftpd-{pid}"
    try:
        group.mkdir()
        (group / "tasks").write_text(str(pid))
    except OSError:
        return None
    return group


def one_round(port: int, out: Path, clients: int, options: list[str]) -> float:
    start = time.perf_counter()
    procs = [
        subprocess.Popen(
            [
                "atftp",
                *options,
                "-g",
                "-r",
                "ipxe.efi",
                "-l",
                str(out / f"{i}"),
                "127.0.0.1",
                str(port),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for i in range(clients)
    ]
    codes = [p.wait(300) for p in procs]
    elapsed = time.perf_counter() - start
    expected = IPXE_EFI.read_bytes()
    bad = [i for i in range(clients) if (out / f"{i}").read_bytes() != expected]
    if any(codes) or bad:
        raise RuntimeError(f"failed fetches: codes={codes} bad={bad}")
    return elapsed


def idle_ticks() -> tuple[int, int]:
    """(idle + iowait, all) ticks of the whole machine, from /proc/stat."""
    ticks = [int(f) for f in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return ticks[3] + ticks[4], sum(ticks)


Result = tuple[list[float], float | None, float]


def measure(served: Served, work: Path, args: argparse.Namespace) -> Result:
    """Round times, the server's CPU seconds over all rounds (None: not known), and the
    machine's idle share meanwhile."""
    options = ["--option", f"blksize {args.blksize}"]
    if args.windowsize > 1:
        options += ["--option", f"windowsize {args.windowsize}"]
    cpu = served.cpu
    before, (idle0, all0) = cpu() if cpu else 0.0, idle_ticks()
    times = [one_round(served.port, work, args.clients, options) for _ in range(args.rounds)]
    idle1, all1 = idle_ticks()
    return times, cpu() - before if cpu else None, (idle1 - idle0) / max(all1 - all0, 1)


def show(name: str, result: Result, size_mb: float, load: float) -> float:
    times, cpu, idle = result
    med = statistics.median(times)
    per_mb = "n/a" if cpu is None else f"{1000 * cpu / (size_mb * len(times)):.1f} ms/MB"
    print(
        f"{name:<18}: median {med:.3f} s (spread {min(times):.3f}-{max(times):.3f}) "
        f"for {size_mb:.0f} MB ({size_mb / med:.0f} MB/s), server CPU {per_mb}, "
        f"machine idle {100 * idle:.0f}%, load before {load:.2f}"
    )
    return med


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--blksize", type=int, default=1428)
    parser.add_argument("--windowsize", type=int, default=1)
    parser.add_argument("--in-tftpd", default=shutil.which("in.tftpd") or "")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, os.cpu_count() or 1])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root, work = Path(tmp, "root"), Path(tmp, "work")
        root.mkdir()
        work.mkdir()
        shutil.copy(IPXE_EFI, root / "ipxe.efi")
        size_mb = IPXE_EFI.stat().st_size * args.clients / 1e6
        ours: dict[int, float] = {}
        for workers in args.workers:
            load = os.getloadavg()[0]
            with corral_server(root, workers) as served:
                result = measure(served, work, args)
            ours[workers] = show(f"corral workers={workers}", result, size_mb, load)
        if not args.in_tftpd:
            print("in.tftpd : not found (apt-get download tftpd-hpa; pass --in-tftpd PATH)")
            return
        load = os.getloadavg()[0]
        with in_tftpd(args.in_tftpd, root) as served:
            theirs = show("in.tftpd", measure(served, work, args), size_mb, load)
        for workers, med in ours.items():
            print(f"throughput corral workers={workers} / in.tftpd = {theirs / med:.2f}x")


if __name__ == "__main__":
    main()
