"""The qemu driver against a real QEMU (TCG, diskless, held with -S) over QMP."""

from __future__ import annotations

import asyncio
import json
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


def qmp_events(path: Path) -> socket.socket:
    """A QMP session on the VM's second monitor, ready to receive events."""
    watcher = socket.socket(socket.AF_UNIX)
    watcher.settimeout(10)
    watcher.connect(str(path))
    stream = watcher.makefile("rwb")
    stream.readline()  # greeting
    stream.write(b'{"execute": "qmp_capabilities"}\n')
    stream.flush()
    assert b"return" in stream.readline()
    return watcher


def events_until(watcher: socket.socket, last: str) -> list[str]:
    """The names of QEMU's events, up to and including `last`."""
    stream, seen = watcher.makefile("rb"), []
    while not seen or seen[-1] != last:
        message = json.loads(stream.readline())
        if "event" in message:
            seen.append(message["event"])
    return seen


def test_on_after_off_boots_afresh_as_a_machine_does(vm: tuple[Path, Path]) -> None:
    qmp_path, _ = vm
    power = PowerSettings(driver="qemu", address=str(qmp_path))
    driver = make_driver("vm1", power, Runtime(poll_interval=0.05))
    with qmp_events(qmp_path.parent / "events.sock") as watcher:
        asyncio.run(driver.on())  # held with -S: it just starts
        assert events_until(watcher, "RESUME") == ["RESUME"]
        asyncio.run(driver.off())
        assert events_until(watcher, "STOP") == ["STOP"]
        asyncio.run(driver.on())  # a power-on after off resets: a paused CPU would resume
        assert events_until(watcher, "RESUME") == ["RESET", "RESUME"]
