"""Hostile HTTP clients on loopback: huge and trickled bodies, slowloris heads, idle sockets.

Each test talks raw HTTP/1.1 over a socket, as an attacker on the provisioning
network would, to a live `corral serve` (issue 10, finding 3).
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from corral.app import Corral
from corral.config import Settings
from corral.services.http import app, limits
from corral.services.http.nodestate import MAX_REPORT
from corral.services.serve import CorralServer, ServeOptions
from tests.helpers.loop import run_in_thread
from tests.services.conftest import LiveServer

IDLE = 2.0  # the idle/header timeout the server under test runs with
LINGER = app.LINGER_TIME  # how long a refused body is drained (and dropped) before closing


@pytest.fixture
def server(corral_home: Path) -> Iterator[LiveServer]:
    corral = Corral(Settings.from_env())
    options = ServeOptions(
        address="127.0.0.1",
        http_port=0,
        http_idle_timeout=IDLE,
        dhcp=False,
        tftp=False,
        seeder=False,
    )
    for started in run_in_thread(CorralServer(corral, options)):
        token = corral.admin_token()
        assert token
        yield LiveServer(corral, started, options.server_url, token)


def connect(server: LiveServer, timeout: float = 5.0) -> socket.socket:
    url = urlsplit(server.url)
    sock = socket.create_connection((url.hostname or "", url.port or 80), timeout=timeout)
    return sock


def head(method: str, path: str, **headers: str) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: corral"]
    lines += [f"{k.replace('_', '-')}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def response(sock: socket.socket) -> tuple[int, bytes]:
    """Status and body of the next response on `sock` (its Content-Length)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed before a response: {data!r}"
        data += chunk
    header, _, body = data.partition(b"\r\n\r\n")
    lines = header.decode("latin-1").split("\r\n")
    fields = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in lines[1:])}
    while len(body) < int(fields.get("content-length", "0")):
        body += sock.recv(65536)
    return int(lines[0].split()[1]), body


def closed_within(sock: socket.socket, seconds: float) -> bool:
    """Whether the server closes `sock` within `seconds` (whatever it still sends is dropped)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        sock.settimeout(max(deadline - time.monotonic(), 0.01))
        try:
            if not sock.recv(65536):
                return True
        except ConnectionResetError:
            return True
        except TimeoutError:
            return False
    return False


def send_quietly(sock: socket.socket, data: bytes) -> bool:
    """Send; False once the server has closed its end (it refused the rest)."""
    try:
        sock.sendall(data)
    except (BrokenPipeError, ConnectionResetError):
        return False
    return True


def test_public_state_route_refuses_a_200_mb_body_before_reading_it(server: LiveServer) -> None:
    """The header alone announces 200 MB; the answer comes without the body being sent."""
    with connect(server) as sock:
        sock.sendall(
            head(
                "POST",
                "/api/v1/boot/self/state",
                Content_Type="application/json",
                Content_Length=str(200 * 1024 * 1024),
            )
            + b'{"state": "'
        )
        status, body = response(sock)  # answered before the body was sent
        assert closed_within(sock, LINGER + 3)
    assert status == 413
    assert str(MAX_REPORT) in json.loads(body)["error"]  # the route's own, declared limit


def test_a_chunked_public_body_is_cut_off_past_the_limit(server: LiveServer) -> None:
    """No Content-Length to check: the limit holds while the body streams in."""
    chunk = b"x" * 16384
    with connect(server) as sock:
        sock.sendall(
            head(
                "POST",
                "/api/v1/boot/self/state",
                Content_Type="application/json",
                Transfer_Encoding="chunked",
            )
        )
        sent = 0
        while sent < 4 * limits.PUBLIC_BODY and send_quietly(
            sock, b"%x\r\n%s\r\n" % (len(chunk), chunk)
        ):
            sent += len(chunk)
        # the last chunk is never sent: only a server that stopped reading can answer
        status, _ = response(sock)
    assert status == 413


def test_a_trickled_public_body_times_out(
    server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(limits, "BODY_TIMEOUT", 1.0)
    with connect(server) as sock:
        sock.sendall(head("POST", "/api/v1/boot/self/state", Content_Length="100") + b"{")
        started = time.monotonic()
        status, _ = response(sock)
    assert status == 408
    assert time.monotonic() - started < 5


def test_admin_routes_get_the_large_limit_only_where_declared(server: LiveServer) -> None:
    """apply takes a big cluster file; other admin routes keep the 1 MiB default."""
    big = json.dumps({"cluster": {"nodes": [], "pad": "x" * (2 * limits.ADMIN_BODY)}}).encode()
    auth = f"Bearer {server.token}"
    answers = {}
    for path in ("/api/v1/apply", "/api/v1/networks"):
        with connect(server, timeout=30) as sock:
            request = head(
                "POST",
                path,
                Authorization=auth,
                Content_Type="application/json",
                Content_Length=str(len(big)),
                Connection="close",
            )
            send_quietly(sock, request + big)
            answers[path] = response(sock)[0]
    assert answers["/api/v1/networks"] == 413
    assert answers["/api/v1/apply"] == 400  # read in full, then refused as a bad cluster file


def test_an_admin_body_without_the_token_is_never_read(server: LiveServer) -> None:
    with connect(server) as sock:
        sock.sendall(
            head("POST", "/api/v1/apply", Content_Length=str(200 * 1024 * 1024), Connection="close")
        )
        status, _ = response(sock)
    assert status == 401


def test_slowloris_heads_and_idle_sockets_are_closed(server: LiveServer) -> None:
    """100 clients that never finish their request head, and 20 that send nothing."""
    socks = [connect(server, timeout=IDLE + 5) for _ in range(120)]
    try:
        for i, sock in enumerate(socks[:100]):
            sock.sendall(f"GET /boot/52:54:00:00:00:{i % 100:02d}.ipxe HTTP/1.1\r\n".encode())
        deadline = time.monotonic() + IDLE * 0.8
        for sock in socks[:100]:  # keep trickling header lines, one at a time
            send_quietly(sock, b"X-Slow: 1\r\n")
        assert time.monotonic() < deadline, "machine too slow to trickle within the timeout"
        started = time.monotonic()
        for sock in socks:
            while True:
                try:
                    chunk = sock.recv(4096)
                except ConnectionResetError:
                    break
                if not chunk:
                    break
        held = time.monotonic() - started
    finally:
        for sock in socks:
            sock.close()
    assert held < IDLE + 3
    # the server still answers an honest client
    with connect(server) as sock:
        sock.sendall(head("GET", "/api/v1/openapi.json", Connection="close"))
        assert response(sock)[0] == 200
