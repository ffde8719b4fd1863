"""corral-fetch, the initramfs' BitTorrent client: compiled (cached) and run against real peers.

The tracker and seeder are `corral serve`'s own on loopback (tests/services/
test_seeder_swarm.py); the second peer is a python libtorrent session.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import subprocess
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest

from corral.images import fetchclient
from corral.images.errors import ImageError
from corral.images.initramfs import BUSYBOX
from corral.images.torrent import for_servers, make_torrent
from corral.services.seeder import SeederSettings
from tests.agent.test_seed import download, until
from tests.conftest import need
from tests.images.test_init_disk import function
from tests.services.test_seeder_swarm import SwarmServer, free_port, serve

SIZE = 3 << 20  # 12 pieces of 256 KiB
T = TypeVar("T")


@pytest.fixture(scope="session")
def client() -> Path:
    """The compiled client (built once per libtorrent and source, then from the cache)."""
    need(fetchclient.available(fetchclient.host_architecture()), "g++ or libtorrent-dev missing")
    return fetchclient.build()


@pytest.fixture
def swarm(corral_home: Path) -> Iterator[SwarmServer]:
    yield from serve(SeederSettings())


@dataclass
class Published:
    data: Path
    torrent: Path
    info_hash: str
    sha256: str


def publish(server: SwarmServer, where: Path, size: int = SIZE) -> Published:
    """A random image with corral's torrent (`images.torrent`), seeded by the server."""
    where.mkdir(parents=True, exist_ok=True)
    data = where / "image.tar.zst"
    data.write_bytes(os.urandom(size))
    sha = hashlib.sha256(data.read_bytes()).hexdigest()
    made = make_torrent(data, data.name, sha, server.corral.options.server_url)
    torrent = where / "image.torrent"
    torrent.write_bytes(made.data)
    assert server.publish(torrent, data) == made.info_hash
    return Published(data, torrent, made.info_hash, sha)


def get_argv(torrent: Path, out: Path, done: Path, seed: int, port: int) -> list[str]:
    return [
        "get", "--torrent", str(torrent), "--dir", str(out), "--done-file", str(done),
        "--seed-seconds", str(seed), "--listen-port", str(port),
    ]  # fmt: skip


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_info_hash_is_the_one_the_image_signature_covers(client: Path, tmp_path: Path) -> None:
    data = tmp_path / "image.tar.zst"
    data.write_bytes(os.urandom(1 << 20))
    made = make_torrent(data, data.name, "ab" * 32, "http://10.0.0.1:9480")
    two = for_servers(made.data, ["http://10.0.0.2:9480", "http://10.0.0.1:9480"])
    for i, blob in enumerate((made.data, two)):
        (tmp_path / f"{i}.torrent").write_bytes(blob)
        run = subprocess.run(
            [str(client), "info-hash", str(tmp_path / f"{i}.torrent")],
            capture_output=True,
            text=True,
            check=True,
        )
        assert run.stdout == made.info_hash + "\n"


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["info-hash", "{tmp}/garbage.torrent"], 1, "{tmp}/garbage.torrent: not a torrent: "),
        (["info-hash", "{tmp}/missing.torrent"], 1, "cannot read {tmp}/missing.torrent: "),
        (get_argv(Path("{tmp}/garbage.torrent"), Path("{tmp}"), Path("{tmp}/d"), 0, 0), 1,
         "{tmp}/garbage.torrent: not a torrent: "),
        (["get", "--torrent", "x", "--dir", "y"], 2, "get needs --torrent, --dir, --done-file"),
        (["get", "--seed-seconds", "soon"], 2, "--seed-seconds wants a whole number"),
        (["get", "--listen-port", "70000"], 2, "--listen-port wants a whole number"),
        (["fetch"], 2, "usage: corral-fetch info-hash"),
        (["get", "--set", "no_such_setting=1"], 2, "--set: no libtorrent setting is called"),
        (["get", "--set", "unchoke_slots_limit=many"], 2, "--set unchoke_slots_limit wants"),
        (["get", "--set", "enable_dht=maybe"], 2, "--set enable_dht wants true or false"),
        (["get", "--set", "=1"], 2, "--set wants NAME=VALUE"),
    ],
)  # fmt: skip
def test_bad_input_is_one_clear_line_and_a_non_zero_exit(
    client: Path, tmp_path: Path, argv: list[str], code: int, message: str
) -> None:
    (tmp_path / "garbage.torrent").write_bytes(b"<html>not found</html>")
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    run = subprocess.run(
        [str(client), *argv], capture_output=True, text=True, timeout=30, check=False
    )
    assert run.returncode == code, run.stderr
    assert run.stderr.startswith("corral-fetch: " + message.replace("{tmp}", str(tmp_path)))
    assert run.stdout == ""


SAY = 'say() { echo "$*" >&2; }\n'  # the init's console line, to stderr here


@pytest.mark.parametrize(
    ("cmdline_value", "code", "message"),
    [
        ("connections_limit=24,enable_dht=false", 1, "not a torrent"),  # taken; then the file
        ("connections_limit=24,no_such_setting=1", 2, "--set: no libtorrent setting"),
        ("user_agent=*", 1, "not a torrent"),  # ignored whole: no glob reaches the client
    ],
)
def test_the_inits_corral_fetch_kernel_arg_reaches_the_client_as_settings(
    client: Path, tmp_path: Path, cmdline_value: str, code: int, message: str
) -> None:
    """corral.fetch=A=1,B=2 on the kernel command line: the init's `fetch_settings` (run
    as it is, by busybox sh) turns it into --set arguments the real client checks."""
    busybox = next(p for p in BUSYBOX if Path(p).is_file())
    words = subprocess.run(
        [busybox, "sh", "-c", SAY + function("fetch_settings") + "fetch_settings"],
        env={"FETCH_SET": cmdline_value}, capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    assert words[0::2] == ["--set"] * (len(words) // 2)
    if "*" in cmdline_value:  # refused whole, so no word can meet a glob
        assert words == []
    (tmp_path / "image.torrent").write_bytes(b"not bencoded")
    argv = [*get_argv(tmp_path / "image.torrent", tmp_path, tmp_path / "done", 0, 0), *words]
    run = subprocess.run([str(client), *argv], capture_output=True, text=True, check=False)
    assert run.returncode == code, run.stderr
    assert message in run.stderr


@pytest.mark.parametrize(
    "tuning",
    [[], ["--set", "unchoke_slots_limit=4", "--set", "enable_dht=false", "--set", "user_agent=x"]],
    ids=["shipped", "tuned"],
)
def test_downloads_through_corrals_tracker_and_seeder(
    client: Path, swarm: SwarmServer, tmp_path: Path, tuning: list[str]
) -> None:
    image = publish(swarm, tmp_path / "server")
    out, done = tmp_path / "node", tmp_path / "done"
    run = subprocess.run(
        [str(client), *get_argv(image.torrent, out, done, 0, free_port()), *tuning],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    got = out / image.data.name
    assert done.read_text() == f"{got}\n"  # what the init's watch reads
    assert sha256_of(got) == image.sha256
    assert "corral-fetch: complete: " in run.stdout
    stats = swarm.tracker.stats()[image.info_hash]
    assert stats["completed"] == 1
    assert stats["peers"] == 0  # it announced `stopped` on its way out


@contextlib.contextmanager
def running(argv: list[str], log: Path) -> Iterator[subprocess.Popen[str]]:
    """corral-fetch as a process, stdout to `log` (read while it runs); killed if left."""
    with log.open("w") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.PIPE, text=True)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_once_complete_it_seeds_to_the_next_node_until_sigterm(
    client: Path, swarm: SwarmServer, tmp_path: Path
) -> None:
    image = publish(swarm, tmp_path / "server")
    out, done = tmp_path / "node", tmp_path / "done"
    port = free_port()
    log = tmp_path / "fetch.log"
    with running([str(client), *get_argv(image.torrent, out, done, 600, port)], log) as proc:
        until(lambda: done.exists() and done.read_text(), "corral-fetch to complete", 120)
        assert sha256_of(out / image.data.name) == image.sha256
        # the server stops seeding: the next node can only get the image from corral-fetch
        on_loop(swarm, lambda: swarm.seeder.unpublish(image.info_hash))
        session, handle = download(image.torrent, tmp_path / "second")
        until(lambda: handle.status().is_seeding, "the second node to complete", 120)
        assert sha256_of(tmp_path / "second" / image.data.name) == image.sha256
        assert proc.poll() is None  # still seeding: 600 s asked
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    output = log.read_text()
    assert proc.returncode == 0, output + err
    assert "seeding:" in output  # the last progress line
    fetch_peer = swarm.tracker.swarms[bytes.fromhex(image.info_hash)].peers
    assert ("127.0.0.1", port) not in fetch_peer  # `stopped` announced on SIGTERM
    # what it reported uploading (its `stopped` announce): the second node's whole image
    assert swarm.tracker.stats()[image.info_hash]["uploaded"] >= SIZE
    del session


def on_loop(server: SwarmServer, call: Callable[[], T]) -> T:
    """`call` on the server's event loop, where its tracker and seeder live."""

    async def run() -> T:
        return call()

    return server.call(run())


def test_stopped_before_completion_exits_3(
    client: Path, swarm: SwarmServer, tmp_path: Path
) -> None:
    """A swarm with no seed: SIGTERM during the download is not a success."""
    data = tmp_path / "lonely.tar.zst"
    data.write_bytes(os.urandom(1 << 20))
    made = make_torrent(data, data.name, "cd" * 32, swarm.corral.options.server_url)
    (tmp_path / "lonely.torrent").write_bytes(made.data)
    on_loop(swarm, lambda: swarm.tracker.publish(made.info_hash, 1 << 20, data.name))
    port = free_port()
    argv = get_argv(tmp_path / "lonely.torrent", tmp_path / "node", tmp_path / "done", 0, port)
    with running([str(client), *argv], tmp_path / "fetch.log") as proc:
        log = tmp_path / "fetch.log"
        until(lambda: "/announce: 0 peers" in log.read_text(), "the tracker's answer", 30)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 3
    assert err == "corral-fetch: stopped before the download completed\n"
    assert not (tmp_path / "done").exists()
    assert ("127.0.0.1", port) not in swarm.tracker.swarms[bytes.fromhex(made.info_hash)].peers


@pytest.fixture
def slow_swarm(corral_home: Path) -> Iterator[SwarmServer]:
    """The server's seed capped at 512 KiB/s: a 3 MiB image takes about 6 s, so a reader
    the scheduler holds back for a few seconds on a busy machine still reads early."""
    yield from serve(SeederSettings(upload_rate=1 << 19))


def test_stream_gives_the_reader_verified_bytes_in_order_while_the_rest_downloads(
    client: Path, slow_swarm: SwarmServer, tmp_path: Path
) -> None:
    image = publish(slow_swarm, tmp_path / "server")
    fifo, done = tmp_path / "stream", tmp_path / "done"
    os.mkfifo(fifo)
    argv = [*get_argv(image.torrent, tmp_path / "node", done, 0, free_port()), "--stream"]
    with (
        running([str(client), *argv, str(fifo)], tmp_path / "fetch.log") as proc,
        ThreadPoolExecutor(1) as pool,
    ):
        read = pool.submit(read_stream, fifo, done)
        first_before_done, streamed = read.result(timeout=120)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert hashlib.sha256(streamed).hexdigest() == image.sha256
    assert first_before_done  # the reader had bytes before the download was complete


def read_stream(fifo: Path, done: Path) -> tuple[bool, bytes]:
    """All of the stream; whether its first bytes came before the done file."""
    chunks = []
    with fifo.open("rb") as stream:
        first = stream.read(1)
        early = not done.exists()
        chunks.append(first)
        while chunk := stream.read(1 << 16):
            chunks.append(chunk)
    return early, b"".join(chunks)


def test_build_is_keyed_by_source_and_libtorrent(
    client: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert client.name == f"corral-fetch-{fetchclient.host_architecture()}-" + (
        fetchclient.cache_key(fetchclient.host_architecture())
    )
    assert fetchclient.build() == client  # cached: not compiled again
    other = "arm64" if fetchclient.host_architecture() != "arm64" else "amd64"
    with pytest.raises(ImageError, match=f"an {other} initramfs keeps aria2c"):
        fetchclient.build(other)
    monkeypatch.setattr(fetchclient, "LIBTORRENT_PACKAGE", "libtorrent-rasterbar-nonesuch")
    with pytest.raises(ImageError, match="libtorrent-rasterbar-nonesuch is not installed"):
        fetchclient.build()


def test_a_reader_that_goes_away_stops_the_stream_not_the_download(
    client: Path, slow_swarm: SwarmServer, tmp_path: Path
) -> None:
    """The unpack behind the stream died: the download completes, so the init can
    unpack the verified file instead (docs/images.md, unpacking while downloading)."""
    image = publish(slow_swarm, tmp_path / "server")
    fifo, done = tmp_path / "stream", tmp_path / "done"
    os.mkfifo(fifo)
    argv = [*get_argv(image.torrent, tmp_path / "node", done, 0, free_port()), "--stream"]
    with running([str(client), *argv, str(fifo)], tmp_path / "fetch.log") as proc:
        with fifo.open("rb") as stream:
            assert stream.read(1)  # the reader starts, then dies before the end
        _, err = proc.communicate(timeout=120)
    log = (tmp_path / "fetch.log").read_text()
    assert proc.returncode == 0, err
    assert f"corral-fetch: stream to {fifo} stopped: cannot write" in log, log
    assert sha256_of(Path(done.read_text().strip())) == image.sha256
