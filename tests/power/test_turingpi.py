"""The turingpi driver against FakeTuringPiBmc: an HTTP server that answers as bmcd's
documented API does (no BMC firmware can run here, so this one is a fake)."""

from __future__ import annotations

import asyncio
import json
import secrets
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from pydantic import SecretStr

from corral.inventory.models import PowerSettings
from corral.power import (
    Action,
    FinalError,
    NotSupported,
    PowerState,
    PowerTarget,
    Runtime,
    make_driver,
    run_power,
)
from corral.power.turingpi import TuringPiDriver


class FakeTuringPiBmc:
    """A board with four slots: power bits, UART buffers, USB mode, bearer tokens."""

    def __init__(self, user: str = "root", password: str = "turing") -> None:
        self.user, self.password = user, password
        self.power = {1: 0, 2: 0, 3: 0, 4: 0}
        self.uart_out = {n: "" for n in range(4)}
        self.uart_in: dict[int, list[str]] = {n: [] for n in range(4)}
        self.usb: dict[str, int] = {}
        self.resets: list[int] = []
        self.tokens: set[str] = set()
        self.requests: list[str] = []
        self.logins = 0
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> FakeTuringPiBmc:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        bmc = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if urlsplit(self.path).path != "/api/bmc/authenticate":
                    return self._send(404, "")
                if (body.get("username"), body.get("password")) != (bmc.user, bmc.password):
                    return self._send(403, "Invalid credentials", raw=True)
                token = secrets.token_hex(16)
                bmc.tokens.add(token)
                bmc.logins += 1
                self._send(200, {"id": token, "expires_in": 3600}, raw=True, token=token)

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                bmc.requests.append(url.query)
                auth = self.headers.get("Authorization", "")
                if url.path != "/api/bmc":
                    return self._send(404, "not found")
                if auth.removeprefix("Bearer ") not in bmc.tokens:
                    return self._send(401, "Unauthorized", raw=True)
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                status, result = bmc.answer(query)
                self._send(status, result, uart=query.get("type") == "uart" and status == 200)

            def _send(
                self,
                status: int,
                result: Any,
                raw: bool = False,
                token: str = "",
                uart: bool = False,
            ) -> None:
                key = "uart" if uart else "result"
                body = result if raw else {"response": [{key: result}]}
                data = (body if isinstance(body, str) else json.dumps(body)).encode()
                self.send_response(status)
                if token:
                    self.send_header("X-Auth-Token", token)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler

    def answer(self, q: dict[str, str]) -> tuple[int, Any]:
        kind, is_set = q.get("type"), q.get("opt") == "set"
        if kind == "power" and not is_set:
            return 200, [{f"node{n}": str(v) for n, v in self.power.items()}]
        if kind == "power":
            for n in self.power:
                if f"node{n}" in q:
                    self.power[n] = int(q[f"node{n}"])
            return 200, "ok"
        node = int(q.get("node", "-1"))
        if not 0 <= node <= 3:
            return 400, "Parameter `node` is out of range 0..3 of node IDs"
        if kind == "reset":
            self.resets.append(node)
        elif kind == "usb":
            self.usb = {"node": node, "mode": int(q["mode"])}
        elif kind == "uart" and is_set:
            self.uart_in[node].append(q["cmd"])
        elif kind == "uart":
            text, self.uart_out[node] = self.uart_out[node], ""
            return 200, text
        elif kind != "node_to_msd":
            return 400, f"Invalid `type` parameter {kind}"
        return 200, "ok"


@pytest.fixture
def board() -> Iterator[FakeTuringPiBmc]:
    with FakeTuringPiBmc() as bmc:
        yield bmc


def settings(board: FakeTuringPiBmc, slot: int, password: str = "turing") -> PowerSettings:
    return PowerSettings(
        driver="turingpi",
        address=board.url,
        username="root",
        password=SecretStr(password),
        slot=slot,
    )


def fast() -> Runtime:
    return Runtime(poll_interval=0.01, wait_timeout=2, backoff=0.01)


def test_per_slot_power_and_status(board: FakeTuringPiBmc) -> None:
    driver = make_driver("tp3", settings(board, 3), fast())
    asyncio.run(driver.on())
    assert board.power == {1: 0, 2: 0, 3: 1, 4: 0}
    assert asyncio.run(driver.status()) == PowerState.ON
    assert "opt=set&type=power&node3=1" in board.requests
    asyncio.run(driver.off())
    assert board.power[3] == 0


def test_reset_usb_msd_and_uart_use_zero_based_nodes(board: FakeTuringPiBmc) -> None:
    driver = make_driver("tp1", settings(board, 1), fast())
    assert isinstance(driver, TuringPiDriver)
    asyncio.run(driver.reset())
    asyncio.run(driver.set_usb("device", "bmc"))
    asyncio.run(driver.mass_storage())
    asyncio.run(driver.uart_write("uname -a"))
    board.uart_out[0] = "Linux tp1\n"
    assert asyncio.run(driver.uart_read()) == "Linux tp1\n"
    assert board.resets == [0] and board.usb == {"node": 0, "mode": 3}
    assert board.uart_in[0] == ["uname -a"]
    assert driver.console().attach is not None


def test_four_slots_share_one_login_and_a_stale_token_is_renewed(board: FakeTuringPiBmc) -> None:
    targets = [PowerTarget(f"tp{n}", settings(board, n)) for n in range(1, 5)]
    rt = fast()
    results = asyncio.run(run_power(targets, Action.ON, runtime=rt))
    assert all(r.ok for r in results), results
    assert board.logins == 1 and set(board.power.values()) == {1}
    board.tokens.clear()  # the BMC restarted: tokens are gone
    results = asyncio.run(run_power(targets, Action.STATUS, runtime=rt))
    assert [r.result for r in results] == ["on"] * 4
    assert board.logins == 2


def test_wrong_password_is_final_and_not_shown(board: FakeTuringPiBmc) -> None:
    driver = make_driver("tp1", settings(board, 1, password="nope-123"), fast())
    with pytest.raises(FinalError, match="refused the credentials") as err:
        asyncio.run(driver.status())
    assert "nope-123" not in str(err.value)


def test_no_network_boot_switch(board: FakeTuringPiBmc) -> None:
    with pytest.raises(NotSupported):
        asyncio.run(make_driver("tp1", settings(board, 1)).boot_network_once())
