"""Two `corral serve` on one database, each with its own disk (CORRAL_HOME).

The image is packed on the first only. The second learns of the first from the
`servers` table, fetches what it lacks by digest from it, and hands out the
image's torrent with both servers' trackers and the same info-hash.
"""

from __future__ import annotations

import hashlib
import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import libtorrent as lt
import pytest
from sqlalchemy import create_engine

from corral.app import Corral
from corral.boot.ipxe import BootFiles, node_script
from corral.config import Paths, Settings
from corral.images import catalog
from corral.images.records import Artifacts, Image, Initramfs, Kernel, Torrent
from corral.images.store import store_file
from corral.images.torrent import TorrentError, for_servers, make_torrent
from corral.protocols import bencode
from corral.services.serve import CorralServer, ServeOptions
from corral.store import servers as server_table
from corral.store.schema import metadata
from tests.helpers.loop import run_in_thread


@dataclass
class Pair:
    first: CorralServer
    second: CorralServer
    image: Image


def serve_options() -> ServeOptions:
    return ServeOptions(
        address="127.0.0.1", http_port=0, tftp_port=0, dhcp=False, seeder=False, tftp=False
    )


def pack_on(corral: Corral, tmp: Path) -> Image:
    """An image record naming real files in the first server's store (a real torrent too)."""
    home = corral.settings.paths.home
    data = tmp / "image.tar.zst"
    data.write_bytes(hashlib.sha256(b"seed").digest() * 40_000)  # 1.25 MiB
    image = store_file(home, data, "tar+zstd")
    made = make_torrent(image.path(home), "tiny.tar.zst", image.sha256, "http://10.0.0.9:8")
    (tmp / "t.torrent").write_bytes(made.data)
    stored = store_file(home, tmp / "t.torrent", "torrent")
    torrent = Torrent(
        **stored.model_dump(), info_hash=made.info_hash, piece_size=made.piece_size,
        tracker=made.tracker, web_seed=made.web_seed,
    )  # fmt: skip
    (tmp / "k").write_bytes(b"kernel")
    (tmp / "i").write_bytes(b"initramfs")
    kernel = store_file(home, tmp / "k", "bzImage")
    initrd = store_file(home, tmp / "i", "cpio+gzip")
    arts = Artifacts(
        fingerprint="f" * 16, digest="sha256:" + "d" * 64, server_url="http://10.0.0.9:8",
        built=1.0, kernel_version="6.1.0-test", image=image, torrent=torrent, kernel=kernel,
        initramfs=Initramfs(**initrd.model_dump(), init="agent"),
    )  # fmt: skip
    record = Image(
        name="tiny", architecture="amd64", digest=arts.digest, size=10, files=1,
        kernels=[Kernel(version="6.1.0-test", vmlinuz="boot/vmlinuz", modules=True)],
        source="test", created=1.0, fingerprint="f" * 16, artifacts=arts,
    )  # fmt: skip
    with corral.store.transaction() as conn:
        catalog.insert(conn, record)
    return record


@pytest.fixture
def pair(corral_home: Path, tmp_path: Path) -> Iterator[Pair]:
    first = Corral(Settings.from_env())
    image = pack_on(first, tmp_path)
    # the second server: the same database and sealing key, a disk of its own
    other = Paths(tmp_path / "second-home")
    settings = Settings(other, first.settings.database_url, first.settings.secret_key_file)
    second = Corral(settings)
    for one in run_in_thread(CorralServer(first, serve_options())):
        for two in run_in_thread(CorralServer(second, serve_options())):
            yield Pair(one, two, image)


def url_of(server: CorralServer) -> str:
    return server.options.server_url


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {})) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_the_second_server_knows_the_first_from_the_database(pair: Pair) -> None:
    with pair.second.corral.store.transaction() as conn:
        live = server_table.live_servers(conn, time.time())
    assert {s.url for s in live} == {url_of(pair.first), url_of(pair.second)}
    token = pair.second.corral.admin_token()
    status, body = get(
        f"{url_of(pair.second)}/api/v1/servers", {"Authorization": f"Bearer {token}"}
    )
    assert status == 200
    seen = {row["url"]: row["this"] for row in json.loads(body)}
    assert seen == {url_of(pair.first): False, url_of(pair.second): True}
    assert get(f"{url_of(pair.second)}/api/v1/servers")[0] == 401  # admins only


def test_a_killed_server_is_dropped_once_its_heartbeat_is_old() -> None:
    engine = create_engine("sqlite://")
    metadata.create_all(engine)
    a = server_table.ServerRecord("http://10.0.0.1:9080", "https://10.0.0.1:9443", "10.0.0.1", 6881)
    b = server_table.ServerRecord("http://10.0.0.2:9080", "https://10.0.0.2:9443", "10.0.0.2")
    with engine.begin() as conn:
        server_table.register(conn, b, 100.0)
        server_table.register(conn, a, 100.0)
        server_table.heartbeat(conn, a, 100.0 + server_table.LIVE_FOR)
        # b's last heartbeat is LIVE_FOR + 1 s old: taken for dead (kill -9 leaves its row)
        assert server_table.live_servers(conn, 101.0 + server_table.LIVE_FOR) == [a]
        server_table.unregister(conn, a.url)
        assert server_table.live_servers(conn, 101.0 + server_table.LIVE_FOR) == []


def test_a_server_fetches_an_artifact_it_lacks_from_its_peer_by_digest(pair: Pair) -> None:
    arts = pair.image.artifacts
    assert arts is not None
    home = pair.second.corral.settings.paths.home
    assert not arts.image.path(home).exists()
    status, body = get(f"{url_of(pair.second)}/artifacts/{arts.image.sha256}")
    assert status == 200
    assert hashlib.sha256(body).hexdigest() == arts.image.sha256
    assert arts.image.path(home).read_bytes() == body  # kept: served from its own disk now


def test_a_peers_request_is_not_passed_on_and_unknown_digests_are_not_fetched(
    pair: Pair,
) -> None:
    arts = pair.image.artifacts
    assert arts is not None
    second = url_of(pair.second)
    status, _ = get(f"{second}/artifacts/{arts.kernel.sha256}", {"X-Corral-Peer": "1"})
    assert status == 404
    status, _ = get(f"{second}/artifacts/{'7' * 64}")
    assert status == 404
    assert not (pair.second.corral.settings.paths.artifacts / ("7" * 64)).exists()
    # a stream of made-up digests leaves no per-digest state behind (one lock each, before)
    for n in range(200):
        assert get(f"{second}/artifacts/{n:064x}")[0] == 404
    assert pair.second._ctx is not None
    assert len(pair.second._ctx.extra.get("peer_fetch_locks", {})) <= 1


def test_the_torrent_announces_to_every_server_with_the_signed_info_hash(pair: Pair) -> None:
    arts = pair.image.artifacts
    assert arts is not None
    status, body = get(f"{url_of(pair.second)}/torrents/{arts.torrent.sha256}")
    assert status == 200, body
    info = lt.torrent_info(body)
    assert str(info.info_hash()) == arts.torrent.info_hash
    torrent = bencode.decode(body)
    assert isinstance(torrent, dict)
    urls = sorted([url_of(pair.first), url_of(pair.second)])
    # BEP 12: one tier per server, in one order for every node
    assert torrent[b"announce-list"] == [[f"{u}/announce".encode()] for u in urls]
    assert "10.0.0.9" not in body.decode("latin-1")  # not bound to the server that packed it


def test_the_ipxe_script_tries_each_server_before_it_waits_and_retries() -> None:
    files = BootFiles(
        kernel_url="http://a/artifacts/k",
        initrd_urls=("http://a/artifacts/i",),
        kernel_args=("initrd=initrd0", "corral.servers=https://a,https://b"),
        mirrors=(("http://b/artifacts/k", ("http://b/artifacts/i",)),),
    )
    lines = node_script("n1", files).splitlines()
    args = "initrd=initrd0 corral.servers=https://a,https://b"
    assert (
        f"kernel http://a/artifacts/k {args} || kernel http://b/artifacts/k {args}"
        " || goto kernel_retry"
    ) in lines
    assert (
        "initrd --name initrd0 http://a/artifacts/i || initrd --name initrd0 http://b/artifacts/i"
        " || goto initrd0_retry"
    ) in lines


def test_a_web_seeded_torrent_lists_every_server_as_web_seed(tmp_path: Path) -> None:
    data = tmp_path / "image"
    data.write_bytes(b"x" * 300_000)
    sha = hashlib.sha256(data.read_bytes()).hexdigest()
    made = make_torrent(data, "tiny.tar.zst", sha, "http://10.0.0.9:8", web_seed=True)
    servers = ["http://10.0.0.1:9480", "http://10.0.0.2:9480"]
    body = for_servers(made.data, servers)
    torrent = bencode.decode(body)
    assert isinstance(torrent, dict)
    assert torrent[b"url-list"] == [f"{s}/artifacts/{sha}".encode() for s in servers]
    assert torrent[b"announce"] == b"http://10.0.0.1:9480/announce"
    assert str(lt.torrent_info(body).info_hash()) == made.info_hash


def test_a_file_that_is_not_a_torrent_is_refused() -> None:
    with pytest.raises(TorrentError):
        for_servers(b"d4:spami3ee", ["http://10.0.0.1:9480"])
    with pytest.raises(TorrentError):
        for_servers(b"\x00not bencode", ["http://10.0.0.1:9480"])
