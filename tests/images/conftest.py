"""Image fixtures: the tiny image (busybox-static + a Debian kernel), built once per run.

The kernel package (~70 MB) is cached across tests and runs in
$CORRAL_TEST_CACHE, else $XDG_CACHE_HOME/corral-test, else /var/cache/corral-test.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from corral.app import Corral
from corral.config import Settings
from corral.images import api
from corral.images.records import Image
from corral.images.tiny import build_tiny_tree
from tests.conftest import need, need_tool


def cache_dir() -> Path:
    if os.environ.get("CORRAL_TEST_CACHE"):
        return Path(os.environ["CORRAL_TEST_CACHE"])
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]) / "corral-test"
    return Path("/var/cache/corral-test")


@pytest.fixture(scope="session")
def kernel_cache() -> Path:
    path = cache_dir()
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def tiny_tree(tmp_path_factory: pytest.TempPathFactory, kernel_cache: Path) -> Path:
    """A tiny image tree, shared read-only by the session (import copies it)."""
    need_tool("busybox", "dpkg", "apt-get", "depmod", "modinfo")
    dest = tmp_path_factory.mktemp("tiny") / "rootfs"
    build_tiny_tree(dest, kernel_cache)
    return dest


@pytest.fixture
def app(corral_home: Path) -> Corral:
    return Corral(Settings.from_env())


@pytest.fixture
def tiny(app: Corral, tiny_tree: Path) -> Image:
    """The tiny image imported as 'tiny' into a fresh CORRAL_HOME."""
    return api.import_image(app, str(tiny_tree), "tiny")


@pytest.fixture
def root_only() -> None:
    need(os.geteuid() == 0, "needs root (mounts, chroot)")


@pytest.fixture
def tmpfs(root_only: None) -> Iterator[Callable[[Path, str], Path]]:
    """Mount small tmpfs filesystems (unmounted after the test, pass or fail)."""
    mounted: list[Path] = []

    def mount(path: Path, size: str) -> Path:
        path.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True
        )
        mounted.append(path)
        return path

    try:
        yield mount
    finally:
        for path in reversed(mounted):
            subprocess.run(["umount", "-l", str(path)], check=False)
