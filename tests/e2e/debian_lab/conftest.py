"""The Debian lab shared by the tests of this package (one xdist unit: see
tests/helpers/xdist_scopes.py). Package scope: its VMs stop as soon as the package's last
test is done, not at the end of the session, so they do not take CPU from later tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from corral.lab.netns import can_create_namespaces
from tests.conftest import need, need_tool
from tests.e2e.debian import DebianLab, start_debian_lab


@pytest.fixture(scope="package")
def debian_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DebianLab]:
    """lab01 (BIOS) and lab02 (UEFI) booted stateless to multi-user, lab03 failed for too
    little memory. See tests/e2e/debian.py."""
    need(can_create_namespaces(), "network namespaces need root")
    need_tool("qemu-system-x86_64", "aria2c", "zstd", "debootstrap", "ssh", "ssh-keygen")
    yield from start_debian_lab(tmp_path_factory.mktemp("debian-lab"))
