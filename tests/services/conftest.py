"""A live `corral serve` (HTTP + TFTP on loopback, ports picked by the kernel)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from corral.app import Corral
from corral.config import Settings
from corral.services.serve import CorralServer, ServeOptions


@dataclass
class LiveServer:
    corral: Corral
    server: CorralServer
    url: str
    token: str


@pytest.fixture
def live_server(corral_home: Path) -> Iterator[LiveServer]:
    corral = Corral(Settings.from_env())
    options = ServeOptions(address="127.0.0.1", http_port=0, tftp_port=0, dhcp=False, bt_port=0)
    server = CorralServer(corral, options)
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    errors: list[BaseException] = []

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(server.start())
        except BaseException as exc:  # surfaced to the test below
            errors.append(exc)
            ready.set()
            return
        ready.set()
        loop.run_forever()
        loop.run_until_complete(server.stop())

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    ready.wait(30)
    if errors:
        raise errors[0]
    token = corral.admin_token()
    assert token
    try:
        yield LiveServer(corral, server, options.server_url, token)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)
        loop.close()
