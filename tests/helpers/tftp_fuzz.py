"""A real `corral serve` TFTP process, and a fuzzer that talks to it over loopback.

Shared by the CI fuzz test (tests/services/test_tftp_hostile.py) and the full-size
run (bench/fuzz_tftp.py). The server is a separate process so that a crash
(a SIGBUS, an exception that escapes) shows as a dead process, and so that its
memory (VmRSS) and open files can be read from /proc without counting ours.
"""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

from corral.protocols.tftp import Ack, Data, Error, OAck, Opcode, Request, build

CORRAL = [sys.executable, "-m", "corral.cli"]
OPTIONS = ("blksize", "tsize", "timeout", "windowsize", "multicast", "utimeout", "x-junk")
VALUES = ("0", "1", "8", "255", "256", "512", "1468", "65464", "65535", "99999999999", "-1", "")


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class ServedTftp:
    """A running `corral serve` (TFTP on 127.0.0.1:port, no DHCP, no seeder)."""

    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def children(self) -> list[int]:
        """The server's child processes: its TFTP workers."""
        tasks = Path(f"/proc/{self.proc.pid}/task")
        return [int(c) for t in tasks.iterdir() for c in (t / "children").read_text().split()]

    def processes(self) -> list[int]:
        return [self.proc.pid, *self.children()]

    def rss_kib(self) -> int:
        """RSS of the server and its workers (a worker that died meanwhile counts 0)."""
        return sum(_rss_kib(pid) for pid in self.processes())

    def open_files(self) -> int:
        """Descriptors held by the server and its workers."""
        total = 0
        for pid in self.processes():
            with suppress(FileNotFoundError):
                total += len(os.listdir(f"/proc/{pid}/fd"))
        return total


def _rss_kib(pid: int) -> int:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return 0
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


@contextmanager
def tftp_serve(home: Path, root: Path) -> Iterator[ServedTftp]:
    """`corral serve` on loopback with `root` as its TFTP root; stopped by PID afterwards."""
    port = free_udp_port()
    log = home.parent / "serve.log"
    argv = [
        *CORRAL, "serve", "-v", "--address", "127.0.0.1", "--http-port", "0",
        "--tftp-port", str(port), "--tftp-root", str(root), "--no-dhcp", "--no-dns", "--no-seeder",
    ]  # fmt: skip
    env = {**os.environ, "CORRAL_HOME": str(home)}
    with log.open("ab") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env)
    served = ServedTftp(proc, port, log)
    try:
        deadline = time.monotonic() + 60
        while "corral serving at" not in log.read_text(errors="replace"):
            if not served.alive or time.monotonic() > deadline:
                raise RuntimeError(f"corral serve did not start:\n{log.read_text()}")
            time.sleep(0.05)
        yield served
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(15)


def request(rng: random.Random, names: list[str]) -> bytes:
    """A well-formed RRQ (sometimes WRQ) with arbitrary options and values."""
    options = {rng.choice(OPTIONS): rng.choice(VALUES) for _ in range(rng.randrange(5))}
    name = rng.choice([*names, "../etc/passwd", "/etc/shadow", "no-such-file", "a" * 300])
    opcode = Opcode.WRQ if rng.random() < 0.05 else Opcode.RRQ
    mode = rng.choice(["octet", "netascii", "mail", "OCTET"])
    return build(Request(opcode, name, mode, options))


def mutate(rng: random.Random, raw: bytes) -> bytes:
    """Truncate, corrupt a byte, swap the opcode, or pad with garbage."""
    kind = rng.randrange(4)
    if kind == 0:
        return raw[: rng.randrange(0, len(raw) + 1)]
    if kind == 1 and raw:
        flip = rng.randrange(len(raw))
        return raw[:flip] + bytes([raw[flip] ^ (1 + rng.randrange(255))]) + raw[flip + 1 :]
    if kind == 2:
        return rng.randrange(256).to_bytes(1, "big") + rng.randrange(256).to_bytes(1, "big") + raw
    return raw + rng.randbytes(rng.randrange(1, 64))


def datagram(rng: random.Random, names: list[str]) -> bytes:
    """One fuzz datagram for the listening port."""
    kind = rng.random()
    if kind < 0.25:
        return rng.randbytes(rng.randrange(0, 1500))
    if kind < 0.55:
        return request(rng, names)
    valid = [
        request(rng, names),
        build(Ack(rng.randrange(65536))),
        build(Data(rng.randrange(65536), rng.randbytes(rng.randrange(600)))),
        build(Error(rng.randrange(65536), "fuzz")),
        build(OAck({"blksize": "512"})),
    ]
    return mutate(rng, rng.choice(valid))


def reply(rng: random.Random, received: bytes) -> bytes:
    """What the fuzzer sends back to a transfer port: ACKs near and far, errors, garbage."""
    block = int.from_bytes(received[2:4], "big") if len(received) >= 4 else 0
    choices = [
        build(Ack(block)),
        build(Ack((block + rng.randrange(-3, 4)) % 65536)),
        build(Ack(rng.randrange(65536))),
        build(Error(0, "fuzz")),
        rng.randbytes(rng.randrange(0, 40)),
    ]
    return mutate(rng, rng.choice(choices)) if rng.random() < 0.3 else rng.choice(choices)


@dataclass
class FuzzReport:
    sent: int = 0
    replies_seen: int = 0
    send_errors: int = 0
    sources: list[str] = field(default_factory=list)


def fuzz(port: int, count: int, seed: int, names: list[str], sources: int = 16) -> FuzzReport:
    """Send `count` datagrams from `sources` loopback addresses, answering transfers at random."""
    rng = random.Random(seed)
    report = FuzzReport(sources=[f"127.0.9.{i + 1}" for i in range(sources)])
    socks = []
    for address in report.sources:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((address, 0))
        sock.setblocking(False)
        socks.append(sock)
    target = ("127.0.0.1", port)
    try:
        while report.sent < count:
            sock = socks[report.sent % len(socks)]
            try:
                sock.sendto(datagram(rng, names), target)
            except OSError:  # ECONNREFUSED from an earlier ICMP, ENOBUFS: carry on
                report.send_errors += 1
            report.sent += 1
            if report.sent % 64 == 0:
                drain(socks, rng, report)
                time.sleep(0.0005)  # let the server keep up rather than the kernel drop
    finally:
        for sock in socks:
            sock.close()
    return report


def drain(socks: list[socket.socket], rng: random.Random, report: FuzzReport) -> None:
    """Read what the server sent; answer a third of it from the same socket."""
    for sock in socks:
        for _ in range(32):
            try:
                received, sender = sock.recvfrom(70000)
            except (BlockingIOError, ConnectionRefusedError):
                break
            report.replies_seen += 1
            if rng.random() < 0.33:
                try:
                    sock.sendto(reply(rng, received), sender)
                except OSError:
                    report.send_errors += 1
                report.sent += 1
