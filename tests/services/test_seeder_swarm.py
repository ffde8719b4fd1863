"""Live tracker (in corral's HTTP app) + libtorrent seeder + real aria2c peers, on loopback."""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket
import subprocess
import threading
import time
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import libtorrent as lt
import pytest

from corral.app import Corral
from corral.config import Settings
from corral.protocols import bencode
from corral.services.seeder import Seeder, SeederSettings, publish_image, spread_of
from corral.services.serve import CorralServer, ServeOptions
from corral.services.tracker import Tracker
from tests.conftest import need_tool

T = TypeVar("T")


@dataclass
class SwarmServer:
    loop: asyncio.AbstractEventLoop
    tracker: Tracker
    corral: CorralServer
    seeder: Seeder

    @property
    def announce_url(self) -> str:
        return f"{self.corral.options.server_url}/announce"

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)

    def publish(self, torrent: Path, data: Path) -> str:
        async def publish() -> str:
            return publish_image(self.seeder, self.tracker, torrent, data, "127.0.0.1")

        return self.call(publish())


def serve(settings: SeederSettings) -> Iterator[SwarmServer]:
    """`corral serve`'s own tracker and seeder (HTTP on loopback, no DHCP/TFTP)."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    options = ServeOptions(
        address="127.0.0.1", http_port=0, tftp=False, dhcp=False, bt_port=0,
        seeder_settings=settings,
    )  # fmt: skip
    corral = CorralServer(Corral(Settings.from_env()), options)

    async def start() -> None:
        await corral.start()

    try:
        asyncio.run_coroutine_threadsafe(start(), loop).result(60)
        assert corral.seeder is not None
        yield SwarmServer(loop, corral.tracker, corral, corral.seeder)
    finally:
        asyncio.run_coroutine_threadsafe(corral.stop(), loop).result(60)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)
        loop.close()


@pytest.fixture
def fast_server(corral_home: Path) -> Iterator[SwarmServer]:
    yield from serve(SeederSettings())


@pytest.fixture
def slow_server(corral_home: Path) -> Iterator[SwarmServer]:
    """A seeder capped well below loopback speed (1 MiB/s): the peers must share to be quick."""
    yield from serve(SeederSettings(upload_rate=1 << 20))


def make_torrent(data: Path, announce: str, piece: int) -> Path:
    ct = lt.create_torrent(lt.list_files(str(data)), piece, lt.create_torrent.v1_only)
    ct.add_tracker(announce)
    ct.set_priv(True)
    lt.set_piece_hashes(ct, str(data.parent))
    torrent = data.with_suffix(".torrent")
    torrent.write_bytes(lt.bencode(ct.generate()))
    return torrent


def random_file(path: Path, size: int) -> str:
    blob = os.urandom(size)
    path.write_bytes(blob)
    return hashlib.sha256(blob).hexdigest()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def aria2c(torrent: Path, out: Path, port: int) -> subprocess.CompletedProcess[str]:
    """aria2c as the host has it."""
    out.mkdir(parents=True)
    argv = [
        "aria2c", "--enable-dht=false", "--enable-dht6=false", "--bt-enable-lpd=false",
        "--enable-peer-exchange=false", "--seed-time=0", "--bt-tracker-connect-timeout=5",
        "--bt-tracker-timeout=10", "--bt-stop-timeout=60", f"--listen-port={port}",
        "--summary-interval=0", "--console-log-level=warn", "--file-allocation=none",
        "--disable-ipv6=true", f"--dir={out}", str(torrent),
    ]  # fmt: skip
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)


def download_two(server: SwarmServer, tmp_path: Path, size: int, piece: int) -> str:
    """Publish a random file and let two aria2c peers fetch it at once; returns its info-hash."""
    need_tool("aria2c")
    src = tmp_path / "src" / "image.bin"
    src.parent.mkdir()
    digest = random_file(src, size)
    torrent = make_torrent(src, server.announce_url, piece)
    info_hash = server.publish(torrent, src)
    outs = [tmp_path / "a", tmp_path / "b"]
    with ThreadPoolExecutor(2) as pool:
        runs = list(pool.map(lambda out: aria2c(torrent, out, free_port()), outs))
    for run in runs:
        assert run.returncode == 0, run.stdout + run.stderr
    for out in outs:
        assert hashlib.sha256((out / "image.bin").read_bytes()).hexdigest() == digest
    return info_hash


@pytest.mark.slow
def test_peers_share_pieces_when_the_seeder_is_slow(
    slow_server: SwarmServer, tmp_path: Path
) -> None:
    size = 2 << 20
    info_hash = download_two(slow_server, tmp_path, size, 32 << 10)
    stats = slow_server.tracker.stats()[info_hash]
    assert stats["peers_seen"] == 2
    assert stats["uploaded"] > 0  # the aria2c peers reported uploading to each other
    seeded = slow_server.seeder.stats()[info_hash].uploaded
    assert seeded < 2 * size  # so part of a download came from the other peer
    assert seeded + stats["uploaded"] >= 2 * size * 0.95


def test_unknown_info_hash_over_http_is_a_bencoded_failure(fast_server: SwarmServer) -> None:
    import urllib.request

    url = fast_server.announce_url + "?info_hash=" + "%01" * 20 + "&peer_id=" + "x" * 20
    with urllib.request.urlopen(url + "&port=6881&left=0", timeout=10) as response:
        body = bencode.decode(response.read())
    assert isinstance(body, dict)
    assert b"unknown info_hash" in body[b"failure reason"]  # type: ignore[operator]


def test_spread_of_matches_libtorrent_definition() -> None:
    assert spread_of([]) == 0.0
    assert spread_of([2, 2, 3, 5]) == 2.5
    assert spread_of([0, 1, 1, 1]) == 0.75


def test_the_seeders_first_announce_finds_its_swarm_open(
    fast_server: SwarmServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """publish_image opens the swarm before the seeder announces: as after a restart,
    the first announce is answered, not refused as an unknown info-hash. Called off the
    loop, as `corral serve` does, so the tracker can answer while it runs."""
    src = tmp_path / "image.bin"
    random_file(src, 1 << 20)
    torrent = make_torrent(src, fast_server.announce_url, 256 << 10)
    with caplog.at_level("WARNING", logger="corral.seeder"):
        server = fast_server
        info_hash = publish_image(server.seeder, server.tracker, torrent, src, "127.0.0.1")
        swarm = fast_server.tracker.swarms[bytes.fromhex(info_hash)]
        seed = swarm.servers[("127.0.0.1", fast_server.seeder.port)]
        deadline = time.monotonic() + 30
        while seed.last_seen == 0.0:  # set by the seeder's own announce
            assert time.monotonic() < deadline, "the seeder never announced"
            time.sleep(0.1)
    assert not [r for r in caplog.records if "info_hash" in r.getMessage()], caplog.text
