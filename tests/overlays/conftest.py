"""Fixtures of the overlay tests: the fixed inventory and a CORRAL_HOME to render in."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from corral.config import Paths
from corral.inventory.index import Inventory
from corral.overlays.render import OverlayRenderer
from tests.overlays.inventory import inventory

DATA = Path(__file__).parent / "data"


@pytest.fixture
def inv() -> Inventory:
    return inventory()


@pytest.fixture
def paths(tmp_path: Path) -> Paths:
    """An empty CORRAL_HOME: host keys are generated on first use."""
    return Paths(tmp_path / "home")


@pytest.fixture
def fixed_paths(paths: Paths) -> Paths:
    """A CORRAL_HOME holding the fixed test host keys, for golden output."""
    shutil.copytree(DATA / "keys", paths.home / "keys", ignore=shutil.ignore_patterns("README"))
    return paths


@pytest.fixture
def renderer(paths: Paths) -> OverlayRenderer:
    return OverlayRenderer(paths)
