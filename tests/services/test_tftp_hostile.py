"""A real `corral serve` TFTP process under attack (issue 10, findings 3 and 5), and its fuzz test.

The server runs as its own process: a crash must show as a dead process, and its
memory and open files are read from /proc.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from corral.protocols.tftp import Opcode, Request, build
from corral.services.tftp import TftpServer
from tests.conftest import need, need_tool
from tests.helpers.tftp_fuzz import ServedTftp, fuzz, tftp_serve

UNDIONLY = Path("/usr/lib/ipxe/undionly.kpxe")
MAX_TRANSFERS = 256  # TftpServer's defaults, which `corral serve` uses
PER_CLIENT = 8


def test_the_server_defaults_are_the_limits_these_tests_check() -> None:
    defaults = TftpServer.__init__.__kwdefaults__ or {}
    assert (defaults["max_transfers"], defaults["max_per_client"]) == (MAX_TRANSFERS, PER_CLIENT)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    need(UNDIONLY.exists(), f"{UNDIONLY} (Debian package ipxe)")
    root = tmp_path / "root"
    root.mkdir()
    shutil.copy(UNDIONLY, root / "undionly.kpxe")
    (root / "big.bin").write_bytes(os.urandom(1 << 20))
    lines = b"".join(b"line %d of a text file\r\n\n" % i for i in range(10_000))
    (root / "text.txt").write_bytes(lines[: 256 * 1024])
    return root


@pytest.fixture
def served(tmp_path: Path, root: Path) -> Iterator[ServedTftp]:
    with tftp_serve(tmp_path / "home", root) as server:
        yield server


def tftp_hpa_get(served: ServedTftp, name: str, out: Path) -> subprocess.CompletedProcess[str]:
    need_tool("tftp")
    argv = [
        "tftp",
        "-v",
        "-m",
        "binary",
        "127.0.0.1",
        str(served.port),
        "-c",
        "get",
        name,
        str(out),
    ]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)


def wait_until(condition: object, seconds: float) -> bool:
    assert callable(condition)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return bool(condition())


@pytest.mark.slow
def test_truncating_a_file_mid_transfer_fails_that_transfer_not_the_server(
    served: ServedTftp, root: Path, tmp_path: Path
) -> None:
    """An in-place upgrade of a served file used to SIGBUS the whole server (mmap)."""
    need_tool("atftp")
    out = tmp_path / "out"
    argv = ["atftp", "--option", "blksize 8", "-g", "-r", "big.bin", "-l", str(out)]
    client = subprocess.Popen([*argv, "127.0.0.1", str(served.port)])
    try:
        started = wait_until(lambda: out.exists() and out.stat().st_size > 16384, 30)
        assert started, "the transfer did not start"
        os.truncate(root / "big.bin", 0)
        code = client.wait(60)
    finally:
        if client.poll() is None:
            client.kill()
            client.wait()
    assert code != 0  # the client was told, not handed a short file as if whole
    assert out.stat().st_size < 1 << 20
    assert served.alive, served.log.read_text()[-3000:]
    result = tftp_hpa_get(served, "undionly.kpxe", tmp_path / "again")
    assert (tmp_path / "again").read_bytes() == UNDIONLY.read_bytes(), result.stdout


def rrq(name: str, mode: str = "octet", **options: str) -> bytes:
    return build(Request(Opcode.RRQ, name, mode, options))


def test_one_client_holds_at_most_its_share_of_transfers(served: ServedTftp) -> None:
    """30 requests nobody answers, from one address: only PER_CLIENT transfers start."""
    ports: set[int] = set()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.7.1", 0))
        for i in range(30):
            sock.sendto(rrq("undionly.kpxe", **{"x-nonce": str(i)}), ("127.0.0.1", served.port))
        deadline = time.monotonic() + 3.0  # transfers retransmit every second meanwhile
        while (left := deadline - time.monotonic()) > 0:
            sock.settimeout(left)
            try:  # each transfer answers from its own port (its TID)
                ports.add(sock.recvfrom(2048)[1][1])
            except TimeoutError:
                break
    assert len(ports) == PER_CLIENT


@pytest.mark.slow
def test_a_flood_of_netascii_requests_is_bounded_in_files_and_memory(
    served: ServedTftp, tmp_path: Path
) -> None:
    """The finding: 1,700 requests (timeout=255, netascii) took 917 MB and 965 open files."""
    before_files, before_rss = served.open_files(), served.rss_kib()
    socks = []
    try:
        for i in range(64):
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.bind((f"127.0.8.{i + 1}", 0))
            socks.append(sock)
        for n in range(1700):
            request = rrq("text.txt", "netascii", timeout="255", tsize="0", x=str(n))
            socks[n % 64].sendto(request, ("127.0.0.1", served.port))
            if n % 100 == 0:
                time.sleep(0.01)
        time.sleep(1.0)  # let the server take in what the kernel queued
        held_files = served.open_files() - before_files
        grown_kib = served.rss_kib() - before_rss
        # an honest client is served while the flood's transfers run out
        result = tftp_hpa_get(served, "undionly.kpxe", tmp_path / "honest")
    finally:
        for sock in socks:
            sock.close()
    assert served.alive
    assert held_files <= 2 * MAX_TRANSFERS + 8  # a socket and a file per transfer
    assert grown_kib < 48 * 1024, f"RSS grew {grown_kib} KiB"
    assert (tmp_path / "honest").read_bytes() == UNDIONLY.read_bytes(), result.stdout
    # abandoned transfers give their files back (timeout 1 s x 6 tries, not 255 s)
    assert wait_until(lambda: served.open_files() <= before_files + 2, 30)


@pytest.mark.slow
def test_fuzzed_datagrams_neither_crash_nor_grow_the_server(
    served: ServedTftp, tmp_path: Path
) -> None:
    """CI-sized fuzz (bench/fuzz_tftp.py runs the same at 10^6)."""
    warm = tftp_hpa_get(served, "undionly.kpxe", tmp_path / "warm")
    assert (tmp_path / "warm").exists(), warm.stdout
    before = served.rss_kib()
    report = fuzz(served.port, 20_000, seed=10, names=["undionly.kpxe", "text.txt", "big.bin"])
    assert report.sent >= 20_000
    assert served.alive, served.log.read_text()[-3000:]
    grown_kib = served.rss_kib() - before
    assert grown_kib < 48 * 1024, f"RSS grew {grown_kib} KiB"
    result = tftp_hpa_get(served, "undionly.kpxe", tmp_path / "after")
    assert (tmp_path / "after").read_bytes() == UNDIONLY.read_bytes(), result.stdout
