"""Shared fixtures: scratch CORRAL_HOME, network topologies, required tools.

Under `make test` (CORRAL_TEST_REQUIRE_ALL=1) a missing tool or privilege is a
failure, not a skip: CI must never pass by silently skipping the real peers.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from corral.lab.netns import Topology, can_create_namespaces

REQUIRE_ALL = os.environ.get("CORRAL_TEST_REQUIRE_ALL") == "1"


def need(condition: bool, why: str) -> None:
    """Skip (or, under `make test`, fail) the calling test unless `condition`."""
    if condition:
        return
    if REQUIRE_ALL:
        pytest.fail(f"required for the full suite: {why}")
    pytest.skip(why)


def need_tool(*names: str) -> None:
    for name in names:
        need(shutil.which(name) is not None, f"{name} is not installed")


@pytest.fixture
def corral_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh CORRAL_HOME for one test; the database URL is left to the default."""
    home = tmp_path / "corral"
    monkeypatch.setenv("CORRAL_HOME", str(home))
    monkeypatch.delenv("CORRAL_DATABASE_URL", raising=False)
    return home


@pytest.fixture
def topo() -> Iterator[Topology]:
    """A network topology torn down after the test, pass or fail."""
    need(can_create_namespaces(), "network namespaces need root and iproute2")
    t = Topology("ct")
    try:
        yield t
    finally:
        t.close()
