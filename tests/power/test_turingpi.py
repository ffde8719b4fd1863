"""The turingpi driver against FakeBmcd (tests/power/fake_bmcd.py): a fake of bmcd 2.x's
API, since no BMC firmware can run here. Each test runs the fake and the driver in one
event loop; nothing sleeps (the driver's runtime polls at 10 ms, conditions are awaited)."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from pathlib import Path

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
from corral.power.base import Capability
from corral.power.turingpi import TuringPiDriver
from tests.power.fake_bmcd import FakeBmcd


def settings(bmc: FakeBmcd, slot: int, password: str = "turing") -> PowerSettings:
    return PowerSettings(
        driver="turingpi",
        address=bmc.url,
        username="root",
        password=SecretStr(password),
        slot=slot,
    )


def fast() -> Runtime:
    return Runtime(poll_interval=0.01, wait_timeout=2, backoff=0.01)


def driver_for(bmc: FakeBmcd, slot: int, password: str = "turing") -> TuringPiDriver:
    driver = make_driver(f"tp{slot}", settings(bmc, slot, password), fast())
    assert isinstance(driver, TuringPiDriver)
    return driver


def on_board(scenario: Callable[[FakeBmcd], Awaitable[None]], **kw: object) -> None:
    async def main() -> None:
        async with FakeBmcd(**kw).running() as bmc:  # type: ignore[arg-type]
            await scenario(bmc)

    asyncio.run(main())


def image(tmp_path: Path, size: int) -> Path:
    path = tmp_path / "rk1-ubuntu.img"
    path.write_bytes(bytes(range(256)) * (size // 256))
    return path


def test_per_slot_power_and_status() -> None:
    async def scenario(bmc: FakeBmcd) -> None:
        driver = driver_for(bmc, 3)
        await driver.on()
        assert bmc.power == {1: 0, 2: 0, 3: 1, 4: 0}
        assert await driver.status() == PowerState.ON
        assert {"opt": "set", "type": "power", "node3": "1"} in bmc.requests
        await driver.off()
        assert bmc.power[3] == 0

    on_board(scenario)


def test_reset_msd_and_uart_use_zero_based_nodes() -> None:
    async def scenario(bmc: FakeBmcd) -> None:
        driver = driver_for(bmc, 2)
        await driver.reset()
        await driver.mass_storage()
        await driver.uart_write("uname -a")
        bmc.uart_out[1] = "Linux tp2\n"
        assert await driver.uart_read() == "Linux tp2\n"
        assert bmc.resets == [1] and bmc.msd == [1]
        assert bmc.uart_in[1] == ["uname -a"]

    on_board(scenario)


@pytest.mark.parametrize(
    ("mode", "route", "number"),
    [("host", "usb-a", 0), ("device", "usb-a", 1), ("flash", "usb-a", 2), ("host", "bmc", 4),
     ("device", "bmc", 5), ("flash", "bmc", 6)],
)  # fmt: skip
def test_usb_mode_numbers_are_bmcds_mode_and_route_bits(mode: str, route: str, number: int) -> None:
    async def scenario(bmc: FakeBmcd) -> None:
        driver = driver_for(bmc, 4)
        await driver.set_usb(mode, route)
        assert bmc.requests[-1] == {"opt": "set", "type": "usb", "node": "3", "mode": str(number)}
        state = await driver.usb_state()
        assert (state.node, state.mode, state.route) == ("Node 4", mode, route)

    on_board(scenario)


def test_an_unknown_usb_mode_is_refused_before_any_request() -> None:
    async def scenario(bmc: FakeBmcd) -> None:
        with pytest.raises(FinalError, match="modes host, device, flash"):
            await driver_for(bmc, 1).set_usb("otg", "bmc")
        assert bmc.requests == []

    on_board(scenario)


def test_four_slots_share_one_login_and_a_stale_token_is_renewed() -> None:
    async def scenario(bmc: FakeBmcd) -> None:
        targets = [PowerTarget(f"tp{n}", settings(bmc, n)) for n in range(1, 5)]
        rt = fast()
        results = await run_power(targets, Action.ON, runtime=rt)
        assert all(r.ok for r in results), results
        assert bmc.logins == 1 and set(bmc.power.values()) == {1}
        bmc.tokens.clear()  # the BMC restarted: tokens are gone
        results = await run_power(targets, Action.STATUS, runtime=rt)
        assert [r.result for r in results] == ["on"] * 4
        assert bmc.logins == 2

    on_board(scenario)


def test_firmware_without_the_authenticate_route_gets_basic_auth() -> None:
    async def scenario(bmc: FakeBmcd) -> None:
        driver = driver_for(bmc, 1)
        await driver.on()
        assert bmc.logins == 0 and bmc.basic_calls >= 2 and bmc.power[1] == 1

    on_board(scenario, auth_route=False)


def test_wrong_password_is_final_and_not_shown() -> None:
    async def scenario(bmc: FakeBmcd) -> None:
        with pytest.raises(FinalError, match="refused the credentials") as err:
            await driver_for(bmc, 1, password="nope-123").status()
        assert "nope-123" not in str(err.value)

    on_board(scenario)


def test_a_bad_slot_is_named() -> None:
    async def scenario(bmc: FakeBmcd) -> None:
        with pytest.raises(FinalError, match="slot '5' is not 1-4"):
            await driver_for(bmc, 5).status()

    on_board(scenario)


def test_no_network_boot_switch() -> None:
    async def scenario(bmc: FakeBmcd) -> None:
        with pytest.raises(NotSupported, match="driver turingpi cannot boot-network"):
            await driver_for(bmc, 1).boot_network_once()

    on_board(scenario)


def test_serial_console_goes_through_the_websocket() -> None:
    async def scenario(bmc: FakeBmcd) -> None:
        driver = driver_for(bmc, 3)
        seen = bytearray()
        answered = asyncio.Event()
        keys = [b"uname -a\r"]

        async def read() -> bytes:
            if keys:
                return keys.pop()
            await answered.wait()
            return b""  # the user left

        def write(data: bytes) -> None:
            seen.extend(data)
            answered.set()

        await asyncio.wait_for(driver.bridge_serial(read, write), 5)
        assert bmc.serial_in[2] == b"uname -a\r"
        assert bytes(seen) == b"echo: uname -a\r"

    on_board(scenario)


def test_flash_uploads_with_handle_and_sha256_and_leaves_the_node_off(tmp_path: Path) -> None:
    path = image(tmp_path, 3 * 1024 * 1024 + 512)
    stages: dict[str, tuple[int, int]] = {}

    async def scenario(bmc: FakeBmcd) -> None:
        bmc.power[2] = 1
        driver = driver_for(bmc, 2)
        result = await driver.flash(path, lambda s, d, t: stages.__setitem__(s, (d, t)))
        request = next(q for q in bmc.requests if q.get("type") == "flash" and q["opt"] == "set")
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        assert request == {
            "opt": "set", "type": "flash", "node": "1", "file": path.name,
            "length": str(path.stat().st_size), "sha256": digest,
        }  # fmt: skip
        assert bytes(bmc.written) == path.read_bytes()
        assert result.sha256 == digest and result.handle == bmc.transfer["handle"]
        assert "Done" in bmc.state and bmc.power[2] == 0
        size = path.stat().st_size
        assert stages["hash"] == (size, size) and stages["upload"] == (size, size)

    on_board(scenario)


def test_a_flash_the_board_rejects_fails_with_its_message(tmp_path: Path) -> None:
    path = image(tmp_path, 4096)

    async def scenario(bmc: FakeBmcd) -> None:
        driver = driver_for(bmc, 1)
        original = driver._begin_flash

        async def corrupt(name: str, size: int, digest: str) -> int:
            return await original(name, size, "00" * 32)  # the board will not match it

        driver._begin_flash = corrupt  # type: ignore[method-assign]
        with pytest.raises(FinalError, match="sha256 checksum mismatch"):
            await driver.flash(path)
        assert bmc.power[1] == 0

    on_board(scenario)


def test_cancelling_a_flash_cancels_the_transfer_and_powers_the_node_off(tmp_path: Path) -> None:
    path = image(tmp_path, 4 * 1024 * 1024)

    async def scenario(bmc: FakeBmcd) -> None:
        bmc.hold_upload = asyncio.Event()
        driver = driver_for(bmc, 4)
        flashing = asyncio.create_task(driver.flash(path))
        await asyncio.wait_for(bmc.first_chunk.wait(), 5)
        bmc.power[4] = 1  # something switched it on mid-flash
        flashing.cancel()  # what asyncio.run does on Ctrl-C
        with pytest.raises(asyncio.CancelledError):
            await flashing
        assert bmc.cancelled == [bmc.transfer["handle"]]
        assert bmc.power[4] == 0
        assert len(bmc.written) < path.stat().st_size

    on_board(scenario)


def test_flashing_a_missing_file_says_so_before_touching_the_board(tmp_path: Path) -> None:
    async def scenario(bmc: FakeBmcd) -> None:
        with pytest.raises(FinalError, match="No such file"):
            await driver_for(bmc, 1).flash(tmp_path / "nope.img")
        assert bmc.requests == [] and bmc.logins == 0

    on_board(scenario)


def test_the_driver_declares_the_board_capabilities() -> None:
    caps = TuringPiDriver.capabilities
    assert {Capability.USB, Capability.FLASH, Capability.MASS_STORAGE, Capability.CONSOLE} <= caps
