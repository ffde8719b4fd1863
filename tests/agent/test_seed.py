"""corral-seed, the booted node's seed, as a process: real libtorrent downloads from it.

The seed runs with the system's python3 in isolated mode (what an image has),
its root a temporary directory laid out as the initramfs leaves it; the
tracker is corral's own (`services/tracker.py`) on loopback; the downloader is
a libtorrent session, the client the issue measured against.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import libtorrent as lt
import pytest
from aiohttp import web

from corral.images.initramfs import AGENT_INIT, BUSYBOX
from corral.overlays.sources import BUILTIN_ROOT
from corral.services.tracker import Tracker, TrackerPolicy, tracker_routes
from tests.helpers.clients import stop
from tests.helpers.loop import run_in_thread

SEED = BUILTIN_ROOT / "agent/usr/lib/corral/corral-seed"
PYTHON = "/usr/bin/python3"
PIECE = 64 << 10
T = TypeVar("T")


def until(check: Callable[[], T | None], what: str, seconds: float = 60.0) -> T:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


class TrackerService:
    """corral's tracker on a free loopback port, as `corral serve` mounts it."""

    def __init__(self) -> None:
        self.tracker = Tracker(TrackerPolicy())
        self.port = 0
        self.runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_routes(tracker_routes(self.tracker))
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        assert self.runner is not None
        await self.runner.cleanup()

    def swarm(self, info_hash: str) -> dict[str, int]:
        return self.tracker.stats()[info_hash]


@pytest.fixture
def tracker() -> Iterator[TrackerService]:
    yield from run_in_thread(TrackerService())


@dataclass
class Image:
    data: Path
    torrent: Path
    info_hash: str
    sha256: str


def make_image(tmp: Path, tracker: TrackerService, size: int) -> Image:
    data = tmp / "image-tiny.tar.zst"
    data.write_bytes(os.urandom(size))
    ct = lt.create_torrent(lt.list_files(str(data)), PIECE, lt.create_torrent.v1_only)
    ct.add_tracker(f"http://127.0.0.1:{tracker.port}/announce")
    lt.set_piece_hashes(ct, str(tmp))
    torrent = tmp / "image.torrent"
    torrent.write_bytes(lt.bencode(ct.generate()))
    info_hash = str(lt.load_torrent_file(str(torrent)).ti.info_hash())
    tracker.tracker.publish(info_hash, size, data.name)
    return Image(data, torrent, info_hash, hashlib.sha256(data.read_bytes()).hexdigest())


def keep_seed(tmp: Path, image: Image, rate: str, from_swarm: str = "1") -> Path:
    """Run the initramfs's own `keep_seed` (cut out of agent/init, /newroot re-rooted in tmp)."""
    match = re.search(r"^keep_seed\(\) {.*?^}\n", AGENT_INIT.read_text(), re.S | re.M)
    assert match, "keep_seed is not in agent/init"
    root = tmp / "newroot"
    root.mkdir()
    run = tmp / "run"
    (run / "download").mkdir(parents=True)
    (run / "image.torrent").write_bytes(image.torrent.read_bytes())
    downloaded = run / "download" / image.data.name
    downloaded.write_bytes(image.data.read_bytes())
    script = 'say() { echo "$*"; }\n' + match.group(0).replace("/newroot", str(root))
    busybox = next(p for p in BUSYBOX if Path(p).is_file())
    env = {"PATH": "/usr/bin:/bin", "RUN": str(run), "IMAGE_FILE": str(downloaded),
           "KEEPSEED": rate, "FROM_SWARM": from_swarm, "IMAGE": "tiny"}  # fmt: skip
    done = subprocess.run([busybox, "sh", "-c", script + "keep_seed"], env=env,
                          capture_output=True, text=True, check=False)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return root


def node_root(tmp: Path, image: Image, rate: int, payload: bytes | None = None) -> Path:
    """A booted node's root as the initramfs leaves it, the archive optionally changed since."""
    root = keep_seed(tmp, image, str(rate))
    if payload is not None:
        (root / "var/lib/corral/seed" / image.data.name).write_bytes(payload)
    return root


def start_seed(root: Path) -> tuple[subprocess.Popen[bytes], int]:
    proc = subprocess.Popen(
        [PYTHON, "-I", "-S", str(SEED), "--root", str(root), "--port", "0"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    assert proc.stderr is not None
    line = proc.stderr.readline().decode()
    if "on port" not in line:
        stop(proc)
        raise AssertionError(f"corral-seed did not start: {line}{proc.stderr.read().decode()}")
    return proc, int(line.split("on port ")[1].split(",")[0])


def download(torrent: Path, into: Path) -> Any:
    ses = lt.session(
        {  # type: ignore[arg-type]
            "listen_interfaces": "127.0.0.1:0",
            "enable_dht": False,
            "enable_lsd": False,
            "enable_upnp": False,
            "enable_natpmp": False,
            "allow_multiple_connections_per_ip": True,
            "alert_mask": 0,
        }
    )
    params = lt.load_torrent_file(str(torrent))
    params.save_path = str(into)
    return ses, ses.add_torrent(params)


def test_a_booted_node_serves_its_image_to_a_booting_one_and_the_tracker_knows_it(
    tmp_path: Path, tracker: TrackerService
) -> None:
    image = make_image(tmp_path, tracker, 40 * PIECE + 1234)
    rate = 1 << 20
    proc, _ = start_seed(node_root(tmp_path, image, rate))
    try:
        until(lambda: tracker.swarm(image.info_hash)["node_seeds"] == 1, "the seed's announce")
        started = time.monotonic()
        ses, handle = download(image.torrent, tmp_path / "got")
        until(lambda: handle.status().is_seeding, "the download from corral-seed")
        took = time.monotonic() - started
        got = tmp_path / "got" / image.data.name
        assert hashlib.sha256(got.read_bytes()).hexdigest() == image.sha256
        # the cap holds: 2.6 MB at 1 MiB/s cannot arrive in much under 2.5 s
        assert took > 0.8 * image.data.stat().st_size / rate
        ses.pause()
    finally:
        stop(proc)
    assert proc.returncode == 0
    # `stopped` on the way out: the tracker no longer lists the node as holding the image
    assert tracker.swarm(image.info_hash)["node_seeds"] == 0


def test_a_seed_whose_archive_is_damaged_never_sends_the_bad_piece(
    tmp_path: Path, tracker: TrackerService
) -> None:
    image = make_image(tmp_path, tracker, 8 * PIECE)
    damaged = bytearray(image.data.read_bytes())
    damaged[3 * PIECE + 10] ^= 0xFF
    proc, _ = start_seed(node_root(tmp_path, image, 50 << 20, bytes(damaged)))
    try:
        ses, handle = download(image.torrent, tmp_path / "got")
        until(lambda: handle.status().num_pieces == 7, "the seven good pieces")
        assert not handle.status().is_seeding
        assert handle.status().num_pieces == 7  # libtorrent never got piece 3 to fail
        ses.pause()
    finally:
        stop(proc)


def test_a_node_whose_profile_turns_seeding_off_keeps_nothing_and_serves_nothing(
    tmp_path: Path, tracker: TrackerService
) -> None:
    image = make_image(tmp_path, tracker, 4 * PIECE)
    root = keep_seed(tmp_path, image, "0")  # corral.keepseed=0 in the profile's kernel args
    assert not (root / "etc/corral/seed").exists()
    assert not (root / "var/lib/corral/seed").exists()
    done = subprocess.run(
        [PYTHON, "-I", "-S", str(SEED), "--root", str(root), "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    assert "nothing to seed" in done.stderr
    assert tracker.swarm(image.info_hash)["peers"] == 0


def test_an_image_that_came_over_http_is_not_kept(tmp_path: Path, tracker: TrackerService) -> None:
    image = make_image(tmp_path, tracker, 4 * PIECE)
    root = keep_seed(tmp_path, image, "1000000", from_swarm="0")
    assert not (root / "var/lib/corral/seed").exists()
