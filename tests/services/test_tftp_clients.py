"""The live asyncio TFTP server against real clients over loopback: tftp-hpa, atftp, curl."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from corral.protocols.tftp import SessionConfig, TftpRoot
from corral.services.tftp import TftpServer
from tests.conftest import need, need_tool
from tests.helpers.loop import run_in_thread

UNDIONLY = Path("/usr/lib/ipxe/undionly.kpxe")
IPXE_EFI = Path("/usr/lib/ipxe/ipxe.efi")


@dataclass
class Live:
    server: TftpServer
    root: Path
    port: int


def make_root(tmp_path: Path) -> Path:
    """A TFTP root with iPXE, large random files, text, and a symlink escaping it."""
    need(UNDIONLY.exists(), f"{UNDIONLY} (Debian package ipxe)")
    root = tmp_path / "root"
    root.mkdir()
    shutil.copy(UNDIONLY, root / "undionly.kpxe")
    (root / "big.bin").write_bytes(os.urandom(3 * 1024 * 1024 + 123))
    (root / "rollover.bin").write_bytes(os.urandom(8 * 65535 + 4000))
    (root / "text.txt").write_bytes(b"line one\nline two\r\nno newline at end")
    (tmp_path / "secret").write_bytes(b"secret")
    (root / "escape").symlink_to(tmp_path / "secret")
    return root


def live_server(root: Path, workers: int = 0) -> Iterator[Live]:
    """Every client here comes from 127.0.0.1, so the per-client limit is lifted."""
    config = SessionConfig(timeout=0.5)
    server = TftpServer(
        TftpRoot(root), "127.0.0.1", 0, config=config, max_per_client=64, workers=workers
    )
    for started in run_in_thread(server):
        yield Live(started, root, started.address[1])


@pytest.fixture(params=[0, 2], ids=["in-process", "2-workers"])
def live(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Live]:
    """Every client test runs against transfers in the listener and in worker processes."""
    yield from live_server(make_root(tmp_path), request.param)


def run(argv: list[str], cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, check=False, cwd=cwd, capture_output=True, text=True, timeout=timeout
    )


def tftp_hpa(live: Live, cwd: Path, *command: str, mode: str = "binary") -> str:
    need_tool("tftp")
    argv = ["tftp", "-v", "-m", mode, "127.0.0.1", str(live.port), "-c", *command]
    result = run(argv, cwd)
    return result.stdout + result.stderr


def atftp(live: Live, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    need_tool("atftp")
    return run(["atftp", *args, "127.0.0.1", str(live.port)], cwd)


def same(a: Path, b: Path) -> bool:
    return a.read_bytes() == b.read_bytes()


def test_tftp_hpa_gets_undionly(live: Live, tmp_path: Path) -> None:
    output = tftp_hpa(live, tmp_path, "get", "undionly.kpxe", "out")
    assert same(tmp_path / "out", live.root / "undionly.kpxe"), output


def test_tftp_hpa_gets_a_multi_megabyte_file(live: Live, tmp_path: Path) -> None:
    output = tftp_hpa(live, tmp_path, "get", "big.bin", "out")
    assert same(tmp_path / "out", live.root / "big.bin"), output


def test_tftp_hpa_netascii_round_trip(live: Live, tmp_path: Path) -> None:
    output = tftp_hpa(live, tmp_path, "get", "text.txt", "out", mode="ascii")
    assert same(tmp_path / "out", live.root / "text.txt"), output


@pytest.mark.parametrize(
    "options",
    [
        ["--option", "blksize 1428", "--option", "tsize enable"],
        ["--option", "blksize 1468", "--option", "windowsize 4"],
        ["--option", "blksize 512", "--option", "windowsize 16", "--option", "timeout 2"],
        ["--option", "blksize 65464"],  # clamped to 1468 by the server
    ],
)
def test_atftp_with_options(live: Live, tmp_path: Path, options: list[str]) -> None:
    result = atftp(live, tmp_path, *options, "-g", "-r", "big.bin", "-l", "out")
    assert result.returncode == 0, result.stderr
    assert same(tmp_path / "out", live.root / "big.bin")


@pytest.mark.slow
@pytest.mark.parametrize("window", ["1", "8"])
def test_atftp_past_block_rollover(live: Live, tmp_path: Path, window: str) -> None:
    """blksize 8: 69,000 blocks, so the block number wraps past 65535."""
    options = ["--option", "blksize 8", "--option", f"windowsize {window}"]
    result = atftp(live, tmp_path, *options, "-g", "-r", "rollover.bin", "-l", "out")
    assert result.returncode == 0, result.stderr
    assert same(tmp_path / "out", live.root / "rollover.bin")


def test_curl_with_blksize(live: Live, tmp_path: Path) -> None:
    need_tool("curl")
    url = f"tftp://127.0.0.1:{live.port}/undionly.kpxe"
    result = run(["curl", "-sS", "--tftp-blksize", "1024", "-o", "out", url], tmp_path)
    assert result.returncode == 0, result.stderr
    assert same(tmp_path / "out", live.root / "undionly.kpxe")


@pytest.mark.parametrize(
    ("requested", "code"),
    [("../secret", "2"), ("..\\secret", "2"), ("escape", "2"), ("/etc/passwd", "1")],
)
def test_tftp_hpa_is_refused_outside_the_root(
    live: Live, tmp_path: Path, requested: str, code: str
) -> None:
    output = tftp_hpa(live, tmp_path, "get", requested, "out")
    assert f"Error code {code}" in output
    assert not (tmp_path / "out").exists() or (tmp_path / "out").read_bytes() == b""


@pytest.mark.parametrize("requested", ["../secret", "escape", "/etc/passwd"])
def test_atftp_is_refused_outside_the_root(live: Live, tmp_path: Path, requested: str) -> None:
    result = atftp(live, tmp_path, "-g", "-r", requested, "-l", "out")
    assert result.returncode != 0
    assert b"secret" not in (tmp_path / "out").read_bytes() if (tmp_path / "out").exists() else True


def test_write_requests_are_refused(live: Live, tmp_path: Path) -> None:
    (tmp_path / "up.txt").write_bytes(b"upload")
    output = tftp_hpa(live, tmp_path, "put", "up.txt", "up.txt")
    assert "Error code 2" in output
    result = atftp(live, tmp_path, "-p", "-l", "up.txt", "-r", "up2.txt")
    assert result.returncode != 0
    assert not (live.root / "up.txt").exists() and not (live.root / "up2.txt").exists()
    assert live.server.counters.refused == 2
