"""64 concurrent atftp fetches of ipxe.efi: corral's TFTP server vs tftpd-hpa's in.tftpd.

Usage: .venv/bin/python bench/tftp_bench.py [--clients 64] [--rounds 5] [--in-tftpd PATH]
       [--blksize 1428] [--windowsize 1]

Both servers serve the same temporary root on loopback in the same run; in.tftpd
runs in the foreground (-L) on a free port and is stopped by its PID afterwards.
Reports the median wall time of one round (all clients fetching at once).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import socket
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from corral.protocols.tftp import TftpRoot
from corral.services.tftp import TftpServer

IPXE_EFI = Path("/usr/lib/ipxe/ipxe.efi")


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def corral_server(root: Path) -> Iterator[int]:
    loop = asyncio.new_event_loop()
    # every atftp client comes from 127.0.0.1: lift the per-client limit (8) for the bench
    server = TftpServer(TftpRoot(root), "127.0.0.1", 0, max_per_client=1024)
    loop.run_until_complete(server.start())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield server.address[1]
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.run_until_complete(server.stop())
        loop.close()


@contextmanager
def in_tftpd(binary: str, root: Path) -> Iterator[int]:
    port = free_udp_port()
    argv = [binary, "-L", "-s", str(root), "-a", f"127.0.0.1:{port}", "-u", "root"]
    proc = subprocess.Popen(argv)
    time.sleep(0.3)
    try:
        if proc.poll() is not None:
            raise RuntimeError(f"in.tftpd exited with {proc.returncode}")
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


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
            ]
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


def measure(port: int, work: Path, args: argparse.Namespace) -> float:
    options = ["--option", f"blksize {args.blksize}"]
    if args.windowsize > 1:
        options += ["--option", f"windowsize {args.windowsize}"]
    times = [one_round(port, work, args.clients, options) for _ in range(args.rounds)]
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--blksize", type=int, default=1428)
    parser.add_argument("--windowsize", type=int, default=1)
    parser.add_argument("--in-tftpd", default=shutil.which("in.tftpd") or "")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root, work = Path(tmp, "root"), Path(tmp, "work")
        root.mkdir()
        work.mkdir()
        shutil.copy(IPXE_EFI, root / "ipxe.efi")
        size_mb = IPXE_EFI.stat().st_size * args.clients / 1e6
        with corral_server(root) as port:
            ours = measure(port, work, args)
        print(f"corral   : median {ours:.3f} s for {size_mb:.0f} MB ({size_mb / ours:.0f} MB/s)")
        if not args.in_tftpd:
            print("in.tftpd : not found (apt-get download tftpd-hpa; pass --in-tftpd PATH)")
            return
        with in_tftpd(args.in_tftpd, root) as port:
            theirs = measure(port, work, args)
        print(
            f"in.tftpd : median {theirs:.3f} s for {size_mb:.0f} MB ({size_mb / theirs:.0f} MB/s)"
        )
        print(f"ratio corral / in.tftpd = {ours / theirs:.2f}")


if __name__ == "__main__":
    main()
