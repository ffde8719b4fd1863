"""A live `corral serve` (HTTP + TFTP on loopback, ports picked by the kernel)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from corral.app import Corral
from corral.config import Settings
from corral.services.serve import CorralServer, ServeOptions
from tests.helpers.loop import run_in_thread


@dataclass
class LiveServer:
    corral: Corral
    server: CorralServer
    url: str
    token: str
    # node credentials by the node's address, for tests that call as a node
    credentials: dict[str, str] = field(default_factory=dict)


@pytest.fixture
def live_server(corral_home: Path) -> Iterator[LiveServer]:
    corral = Corral(Settings.from_env())
    options = ServeOptions(address="127.0.0.1", http_port=0, tftp_port=0, dhcp=False, bt_port=0)
    server = CorralServer(corral, options)
    for started in run_in_thread(server):
        token = corral.admin_token()
        assert token
        yield LiveServer(corral, started, options.server_url, token)
