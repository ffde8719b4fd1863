"""The .torrent of a packed image, made with libtorrent.

v1 only (aria2c, the arm64 initramfs' client, speaks v1 only), private (no DHT or PEX:
peers come from corral's tracker alone), one file, the tracker and web seed
both on corral's HTTP server. The piece size grows with the image so that a
torrent has about a thousand pieces: small enough pieces to spread early
among booting peers, few enough that the metadata stays small.

What nodes download is not bound to the server that packed it: `for_servers`
gives the same torrent (the same info dictionary, so the same info-hash, which
the image signature covers) with an announce-list of every live server's
tracker, one tier each in one order for all (BEP 12: a client moves to the next
tier when a tracker fails, and all nodes meet on the first that answers), and,
when the pack has a web seed, a url-list of every server (BEP 19).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import libtorrent as lt

from corral.protocols import bencode

MIN_PIECE = 256 << 10
MAX_PIECE = 16 << 20
TARGET_PIECES = 1024


def piece_size(size: int) -> int:
    """Power of two near size/1024, between 256 KiB and 16 MiB."""
    piece = MIN_PIECE
    while piece < MAX_PIECE and size > piece * TARGET_PIECES:
        piece *= 2
    return piece


def tracker_url(server_url: str) -> str:
    return f"{server_url.rstrip('/')}/announce"


def web_seed_url(server_url: str, sha256: str) -> str:
    return f"{server_url.rstrip('/')}/artifacts/{sha256}"


@dataclass(frozen=True)
class TorrentFile:
    data: bytes
    info_hash: str
    piece_size: int
    tracker: str
    web_seed: str


def piece_hashes(path: Path, piece: int) -> list[bytes]:
    hashes = []
    with path.open("rb", buffering=0) as fh:
        while block := fh.read(piece):
            hashes.append(hashlib.sha1(block, usedforsecurity=False).digest())
    return hashes


# Web seeds off by default: aria2c pulls from a web seed as eagerly as from
# peers, so with one the server sent 21.7 images at N = 64 instead of ~2 (see
# bench/RESULTS.md and shared notes). The initramfs falls back to plain HTTP
# by itself when the swarm fails, which is what the web seed would insure.
WEB_SEED = False


def make_torrent(
    path: Path, filename: str, sha256: str, server_url: str, web_seed: bool = WEB_SEED
) -> TorrentFile:
    """A torrent for the file at `path`, served by corral at `server_url` (http://HOST:PORT)."""
    size = path.stat().st_size
    piece = piece_size(size)
    entry = lt.create_file_entry(filename, size)
    ct = lt.create_torrent([entry], piece, lt.create_torrent.v1_only)
    for index, digest in enumerate(piece_hashes(path, piece)):
        ct.set_hash(index, digest)
    tracker, seed = tracker_url(server_url), web_seed_url(server_url, sha256)
    ct.set_priv(True)
    ct.add_tracker(tracker)
    if web_seed:
        ct.add_url_seed(seed)
    else:
        seed = ""
    ct.set_creator("corral")
    ct.set_creation_date(0)
    data = lt.bencode(ct.generate())
    info_hash = str(lt.torrent_info(data).info_hash())
    return TorrentFile(data, info_hash, piece, tracker, seed)


class TorrentError(ValueError):
    """The file is not a single torrent this code can re-announce."""


def for_servers(data: bytes, server_urls: list[str]) -> bytes:
    """The torrent `data` announcing to the trackers of `server_urls` (in that order).

    The info dictionary is kept as it is (its hash is checked), so the info-hash,
    and with it the image signature, holds whatever servers are listed.
    """
    try:
        torrent = bencode.decode(data)
    except bencode.BencodeError as exc:
        raise TorrentError(f"not a torrent: {exc}") from None
    if not isinstance(torrent, dict) or not isinstance(torrent.get(b"info"), dict):
        raise TorrentError("not a torrent: no info dictionary")
    trackers: list[bencode.Value] = [[tracker_url(url)] for url in server_urls]
    out = dict(cast(dict[bytes | str, bencode.Value], torrent))
    out[b"announce"] = tracker_url(server_urls[0])
    out[b"announce-list"] = trackers
    seeds = torrent.get(b"url-list")
    if seeds:
        first = seeds[0] if isinstance(seeds, list) else seeds
        sha256 = first.rsplit(b"/", 1)[-1].decode() if isinstance(first, bytes) else ""
        out[b"url-list"] = [web_seed_url(url, sha256) for url in server_urls]
    encoded = bencode.encode(out)
    if info_hash_of(encoded) != info_hash_of(data):  # a non-canonical info dictionary
        raise TorrentError("re-encoding would change the torrent's info-hash")
    return encoded


def info_hash_of(data: bytes) -> str:
    """The v1 info-hash (hex) of torrent `data`, as libtorrent reads it."""
    try:
        return str(lt.torrent_info(data).info_hash())
    except RuntimeError as exc:
        raise TorrentError(f"not a torrent: {exc}") from None
