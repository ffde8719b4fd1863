"""TFTP transfers in worker processes: spread over the workers, a killed worker, shutdown.

The client-facing guarantees (root, options, netascii, rollover, limits) run
against workers too: test_tftp_clients.py and test_tftp_load.py take both.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from corral.protocols.tftp import Data, Opcode, Request, build, parse
from corral.services.tftp_pool import default_workers
from tests.conftest import need_tool
from tests.helpers.tftp_fuzz import ServedTftp, tftp_serve
from tests.services.test_tftp_clients import Live, live_server, make_root, same


def wait_until(condition: Callable[[], bool], seconds: float = 15) -> bool:
    """Poll `condition` (the server's state changes on its own loop) until a deadline."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def gone(pid: int) -> bool:
    """The process has exited (a zombie waiting for init to reap it counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


@pytest.fixture
def planted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A `json.py` in the server's working directory that leaves a mark if imported:
    `python -m` puts the working directory first on the path, and `corral serve` runs
    as root."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    mark = tmp_path / "imported-from-cwd"
    (cwd / "json.py").write_text(f"open({str(mark)!r}, 'w').close()\nraise ImportError\n")
    monkeypatch.chdir(cwd)
    return mark


def test_a_worker_never_imports_from_the_servers_working_directory(
    planted: Path, tmp_path: Path
) -> None:
    for live in live_server(make_root(tmp_path), workers=1):
        need_tool("tftp")
        out = tmp_path / "got"
        argv = ["tftp", "-m", "binary", "127.0.0.1", str(live.port), "-c", "get", "big.bin",
                str(out)]  # fmt: skip
        subprocess.run(argv, check=False, capture_output=True, timeout=60)
        assert same(out, live.root / "big.bin")
        assert live.server.pool is not None and live.server.pool.handed == [1]  # a worker
    assert not planted.exists()


@pytest.fixture
def two(tmp_path: Path) -> Iterator[Live]:
    yield from live_server(make_root(tmp_path), workers=2)


@pytest.fixture
def one(tmp_path: Path) -> Iterator[Live]:
    yield from live_server(make_root(tmp_path), workers=1)


def test_concurrent_transfers_are_spread_over_the_workers(two: Live, tmp_path: Path) -> None:
    need_tool("atftp")
    argv = ["atftp", "--option", "blksize 1428", "-g", "-r", "big.bin"]
    procs = [
        subprocess.Popen([*argv, "-l", f"out{i}", "127.0.0.1", str(two.port)], cwd=tmp_path)
        for i in range(16)
    ]
    assert [p.wait(120) for p in procs] == [0] * 16
    for i in range(16):
        assert same(tmp_path / f"out{i}", two.root / "big.bin")
    server = two.server
    assert server.pool is not None
    handed = server.pool.handed
    assert len(handed) == 2 and min(handed) > 0 and sum(handed) == 16, handed
    assert wait_until(lambda: server.counters.transfers_done == 16), server.counters
    assert server.active_transfers == 0
    assert server.counters.bytes_sent > 16 * (two.root / "big.bin").stat().st_size


def test_a_killed_worker_is_replaced_and_its_transfer_fails_cleanly(
    one: Live, tmp_path: Path
) -> None:
    server = one.server
    assert server.pool is not None
    [victim] = server.pool.pids
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(10)
        sock.sendto(build(Request(Opcode.RRQ, "big.bin")), ("127.0.0.1", one.port))
        first, tid = sock.recvfrom(2048)  # the transfer runs (from the worker's socket)
        packet = parse(first)
        assert isinstance(packet, Data) and packet.block == 1
        assert server.active_transfers == 1
        os.kill(victim, signal.SIGKILL)
        # the server frees the transfer's slot, counts it failed, starts another worker
        assert wait_until(lambda: server.active_transfers == 0), server.counters
        assert server.counters.transfers_failed == 1
        assert wait_until(lambda: len(server.pool.pids) == 1 and server.pool.pids != [victim])
        assert server.pool.restarts == 1
        # the client's transfer is over: its server TID is closed, nothing more comes
        sock.settimeout(0.5)
        sock.sendto(b"\x00\x04\x00\x01", tid)
        with pytest.raises((TimeoutError, ConnectionRefusedError)):
            sock.recvfrom(2048)
    # reaped, not a zombie: the victim was the pool's own child (this process's)
    assert wait_until(lambda: not Path(f"/proc/{victim}").exists())
    need_tool("tftp")
    out = tmp_path / "after"
    argv = ["tftp", "-m", "binary", "127.0.0.1", str(one.port), "-c", "get", "big.bin", str(out)]
    subprocess.run(argv, check=False, capture_output=True, timeout=60)
    assert same(out, one.root / "big.bin")
    assert server.pool.handed == [1]  # by the new worker


@pytest.fixture
def served(tmp_path: Path) -> Iterator[ServedTftp]:
    root = make_root(tmp_path)
    home = tmp_path / "home"
    home.mkdir()
    with tftp_serve(home, root) as served:
        yield served


def workers_of(served: ServedTftp) -> list[int]:
    assert wait_until(lambda: len(served.children()) == default_workers())
    assert "worker processes" in served.log.read_text()
    return served.children()


@pytest.mark.slow
def test_corral_serve_stopped_leaves_no_worker(served: ServedTftp) -> None:
    workers = workers_of(served)
    served.proc.terminate()
    assert served.proc.wait(30) == 0
    assert wait_until(lambda: all(gone(pid) for pid in workers))


@pytest.mark.slow
def test_corral_serve_killed_takes_its_workers_along(served: ServedTftp, tmp_path: Path) -> None:
    workers = workers_of(served)
    need_tool("tftp")
    out = tmp_path / "got"
    argv = ["tftp", "-m", "binary", "127.0.0.1", str(served.port), "-c", "get", "big.bin", str(out)]
    subprocess.run(argv, check=False, capture_output=True, timeout=60)
    assert out.stat().st_size == 3 * 1024 * 1024 + 123  # served by a worker
    served.proc.kill()  # SIGKILL: no stop() runs; the kernel's PR_SET_PDEATHSIG does it
    served.proc.wait(30)
    assert wait_until(lambda: all(gone(pid) for pid in workers))
