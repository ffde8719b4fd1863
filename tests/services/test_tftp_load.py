"""The live TFTP server under garbage and under many concurrent real clients."""

from __future__ import annotations

import random
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from corral.protocols.tftp import Ack, Data, OAck, Opcode, Request, build, parse
from tests.conftest import need_tool
from tests.services.test_tftp_clients import Live, live_server, make_root, same


@pytest.fixture(params=[0, 2], ids=["in-process", "2-workers"])
def live(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Live]:
    yield from live_server(make_root(tmp_path), request.param)


def garbage(rng: random.Random) -> bytes:
    """Random bytes, truncated or corrupted requests, stray packets, unknown opcodes."""
    valid = [
        build(Request(Opcode.RRQ, "undionly.kpxe", "octet", {"blksize": "1428"})),
        build(Request(Opcode.RRQ, "no-such-file", "octet")),
        build(Ack(rng.randrange(65536))),
        build(Data(1, b"x" * 10)),
        build(OAck({"tsize": "1"})),
    ]
    kind = rng.randrange(4)
    if kind == 0:
        return rng.randbytes(rng.randrange(0, 600))
    raw = rng.choice(valid)
    if kind == 1:
        return raw[: rng.randrange(0, len(raw))]
    if kind == 2:
        return bytes([rng.randrange(256), rng.randrange(256)]) + raw[2:]
    flip = rng.randrange(len(raw))
    return raw[:flip] + bytes([raw[flip] ^ 0xFF]) + raw[flip + 1 :]


def fetch(live: Live, cwd: Path, name: str, out: str) -> subprocess.Popen[bytes]:
    argv = ["atftp", "--option", "blksize 1428", "-g", "-r", name, "-l", out]
    return subprocess.Popen([*argv, "127.0.0.1", str(live.port)], cwd=cwd)


def test_ten_thousand_garbage_datagrams_then_a_real_client(live: Live, tmp_path: Path) -> None:
    need_tool("atftp")
    rng = random.Random(69)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        for i in range(10_000):
            if b"undionly" in (datagram := garbage(rng)):
                continue  # a valid RRQ would start a transfer nobody ACKs
            sock.sendto(datagram, ("127.0.0.1", live.port))
            if i % 200 == 0:
                time.sleep(0.002)  # let the server drain rather than the kernel drop
    time.sleep(0.2)
    assert live.server.counters.malformed > 1000
    proc = fetch(live, tmp_path, "undionly.kpxe", "out")
    assert proc.wait(30) == 0
    assert same(tmp_path / "out", live.root / "undionly.kpxe")


def test_garbage_mid_transfer_from_the_peer_is_dropped(live: Live) -> None:
    """Malformed datagrams from the client's own port neither end nor disturb the transfer."""
    data = (live.root / "undionly.kpxe").read_bytes()
    got = bytearray()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(5)
        sock.sendto(build(Request(Opcode.RRQ, "undionly.kpxe")), ("127.0.0.1", live.port))
        while True:
            datagram, server = sock.recvfrom(2048)
            packet = parse(datagram)
            assert isinstance(packet, Data)
            got += packet.payload
            sock.sendto(b"\x00\x04\x00", server)  # truncated ACK
            sock.sendto(b"\xff" * 40, server)
            sock.sendto(build(Ack(packet.block)), server)
            if len(packet.payload) < 512:
                break
    assert bytes(got) == data
    # a worker reports its counters when the transfer ends (at the last ACK)
    deadline = time.monotonic() + 10
    while live.server.counters.transfers_done < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert live.server.counters.malformed >= 2 * (len(data) // 512)


@pytest.mark.slow
def test_thirty_two_concurrent_atftp_clients(live: Live, tmp_path: Path) -> None:
    need_tool("atftp")
    procs = [fetch(live, tmp_path, "big.bin", f"out{i}") for i in range(32)]
    try:
        codes = [p.wait(120) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert codes == [0] * 32
    for i in range(32):
        assert same(tmp_path / f"out{i}", live.root / "big.bin"), i
    counters = live.server.counters
    assert counters.transfers_done == 32 and counters.transfers_failed == 0
    assert live.server.active_transfers == 0


def test_a_peer_that_goes_silent_mid_file_gets_the_block_again_one_timeout_later(
    live: Live,
) -> None:
    """The transfer timer is re-armed lazily (not per ACK): after a second of ACKs that
    each pushed the deadline on, silence still brings the retransmission on time."""
    timeout = live.server.config.timeout
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(10)
        sock.sendto(build(Request(Opcode.RRQ, "undionly.kpxe")), ("127.0.0.1", live.port))
        started = time.monotonic()
        while True:
            packet, server = sock.recvfrom(2048)
            data = parse(packet)
            assert isinstance(data, Data)
            if time.monotonic() - started > 3 * timeout:
                break  # the deadline has moved well past where the first timer was set
            time.sleep(timeout / 10)
            sock.sendto(build(Ack(data.block)), server)
        silent_at = time.monotonic()  # block `data.block` is never acknowledged
        again = parse(sock.recvfrom(2048)[0])
        waited = time.monotonic() - silent_at
    assert isinstance(again, Data) and again.block == data.block
    assert 0.8 * timeout <= waited < timeout + 5.0, waited
