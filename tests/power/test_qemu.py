"""The qemu driver against a real QEMU (TCG, diskless, held with -S) over QMP."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from corral.inventory.models import PowerSettings
from corral.power import FinalError, PowerState, Runtime, make_driver
from corral.power.qemu import qmp
from tests.conftest import need_tool
from tests.power.peers import qemu_vm


@pytest.fixture
def vm(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    need_tool("qemu-system-x86_64")
    with qemu_vm(tmp_path / "vm") as sockets:
        yield sockets


def test_on_off_reset_through_qmp(vm: tuple[Path, Path]) -> None:
    qmp_path, serial = vm
    power = PowerSettings(driver="qemu", address=str(qmp_path), options={"serial": str(serial)})
    driver = make_driver("vm1", power, Runtime(poll_interval=0.05))
    assert asyncio.run(driver.status()) == PowerState.OFF  # prelaunch (-S)
    asyncio.run(driver.on())
    assert asyncio.run(qmp(str(qmp_path), "query-status"))["status"] == "running"
    asyncio.run(driver.reset())
    asyncio.run(driver.cycle())
    assert asyncio.run(driver.status()) == PowerState.ON
    asyncio.run(driver.off())
    assert asyncio.run(qmp(str(qmp_path), "query-status"))["status"] == "paused"
    assert asyncio.run(driver.status()) == PowerState.OFF
    assert driver.console().unix_socket == str(serial)
    with socket.socket(socket.AF_UNIX) as s:  # the serial socket a console bridges to
        s.connect(str(serial))


def test_off_quit_ends_qemu_and_then_status_is_off(vm: tuple[Path, Path]) -> None:
    qmp_path, _ = vm
    power = PowerSettings(driver="qemu", address=str(qmp_path), options={"off": "quit"})
    driver = make_driver("vm1", power, Runtime(attempts=1))
    asyncio.run(driver.on())
    asyncio.run(driver.off())
    qmp_path.unlink(missing_ok=True)  # QEMU removes it on quit; be sure before asserting
    assert asyncio.run(driver.status()) == PowerState.OFF
    with pytest.raises(FinalError, match="no QEMU listens"):
        asyncio.run(driver.on())
