"""The initramfs (`agent/init`) carries on when its server goes away mid-boot and comes back.

Run by busybox sh, as shipped, with the real corral-fetch, and with aria2c alone.
The HTTP peer is the standard library's server in a thread, answering 503 to a
path's first request: what a `corral serve` that is being restarted looks like to
a node (issue 10's kill -9 test shows the same with VMs, tests/e2e/test_serve_kill.py).
"""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from corral.images.torrent import make_torrent
from tests.conftest import need_tool
from tests.status.test_init_tls import run_init

SWARM_FUNCTIONS = (
    "retry",
    "mirrors",
    "on_servers",
    "http_get",
    "http_get_one",
    "torrent_is_signed",
    "swarm_download",
    "watch_swarm",
    "give_up_swarm",
    "start_unpack",
    "finish_unpack",
    "stop_unpack",
    "stop_seeding",
    "last_lines",
    "download_image",
)


@dataclass
class Flaky:
    """What the server holds and what it saw; each path in `fail_once` gets one 503 first."""

    files: dict[str, bytes] = field(default_factory=dict)
    fail_once: set[str] = field(default_factory=set)
    requests: list[tuple[str, str]] = field(default_factory=list)
    posted: list[bytes] = field(default_factory=list)


def handler_for(state: Flaky) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _refused_once(self) -> bool:
            self._note()
            if self.path in state.fail_once:
                state.fail_once.discard(self.path)
                self.send_error(503, "restarting")
                return True
            return False

        def _note(self) -> None:
            state.requests.append((self.command, self.path))

        def do_GET(self) -> None:
            if self._refused_once():
                return
            body = state.files.get(self.path)
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            if self._refused_once():
                return
            state.posted.append(body)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    return Handler


@pytest.fixture
def flaky() -> Iterator[tuple[Flaky, str]]:
    state = Flaky()
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler_for(state))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def dead_port() -> int:
    """A loopback port nothing listens on (bound, then closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def client_running(download_dir: Path) -> str:
    """The BitTorrent clients that download into `download_dir` (pgrep's lines)."""
    pattern = f"--dir[= ]{download_dir} "
    out = subprocess.run(["pgrep", "-af", pattern], capture_output=True, text=True, check=False)
    return out.stdout.strip()


def test_a_swarm_with_no_seeder_stalls_and_the_signed_image_comes_over_http(
    tmp_path: Path, flaky: tuple[Flaky, str], node_client: str
) -> None:
    need_tool("busybox")
    state, url = flaky
    image = os.urandom(400_000)
    sha = hashlib.sha256(image).hexdigest()
    (tmp_path / "image.tar.zst").write_bytes(image)
    # the tracker's server is gone (nothing listens there): the client gets no peer, no byte
    torrent = make_torrent(
        tmp_path / "image.tar.zst", "tiny.tar.zst", sha, f"http://127.0.0.1:{dead_port()}"
    )
    state.files = {"/artifacts/torrent": torrent.data, f"/artifacts/{sha}": image}
    state.fail_once = {f"/artifacts/{sha}"}  # and the first HTTP try meets a restart
    run, dl = tmp_path / "run", tmp_path / "run" / "download"
    dl.mkdir(parents=True)
    env = {
        "RUN": str(run),
        "DL": str(dl),
        "SWARM": "1",
        "STALL": "3",
        "SEED": "0",
        "TORRENT_URL": f"{url}/artifacts/torrent",
        "TORRENT_INFO_HASH": torrent.info_hash,
        "IMAGE_URL": f"{url}/artifacts/{sha}",
        "IMAGE_SHA256": sha,
        "IMAGE_PACKED": str(len(image)),
        "PATH": node_client,
    }
    out = run_init(["download_image", 'echo "got $IMAGE_FILE"'], env, SWARM_FUNCTIONS)
    assert "say: swarm stalled: no data for 3s" in out, out
    assert "say: image over HTTP" in out, out
    assert "FAIL" not in out, out
    # the copy it kept is the signed digest's, fetched again after the 503
    assert f"got {dl / 'image.tar.zst'}" in out
    assert hashlib.sha256((dl / "image.tar.zst").read_bytes()).hexdigest() == sha
    assert state.requests.count(("GET", f"/artifacts/{sha}")) == 2
    assert not client_running(dl)  # given up: killed, not left seeding a partial file


def test_a_state_report_outlives_a_server_restart(tmp_path: Path, flaky: tuple[Flaky, str]) -> None:
    need_tool("busybox")
    state, url = flaky
    state.fail_once = {"/api/v1/boot/self/state"}
    env = {"RUN": str(tmp_path), "STATE_URL": f"{url}/api/v1/boot/self/state"}
    functions = ("retry", "mirrors", "on_servers", "post_json", "post_state")
    out = run_init(["post_state downloading", "echo reported"], env, functions)
    assert "reported" in out and "could not report" not in out, out
    assert state.posted == [b'{"state":"downloading"}']
    assert state.requests.count(("POST", "/api/v1/boot/self/state")) == 2
