"""The redfish driver (sushy) against sushy-tools' emulator with its fake (no libvirt) systems."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections.abc import Iterator

import pytest

from corral.inventory.models import PowerSettings
from corral.power import (
    Action,
    NotSupported,
    PowerState,
    PowerTarget,
    Runtime,
    SettingsError,
    make_driver,
    run_power,
)
from tests.power.peers import fake_systems, sushy_emulator

SYSTEMS = fake_systems(2)


@pytest.fixture(scope="module")
def redfish(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with sushy_emulator(tmp_path_factory.mktemp("sushy"), SYSTEMS) as url:
        yield url


def settings(url: str, system: int | None = 0) -> PowerSettings:
    options = {"system_id": str(SYSTEMS[system]["uuid"])} if system is not None else {}
    return PowerSettings(driver="redfish", address=url, options=options)


def emulator_view(url: str, system: int) -> dict[str, object]:
    with urllib.request.urlopen(f"{url}/redfish/v1/Systems/{SYSTEMS[system]['uuid']}") as r:
        data: dict[str, object] = json.load(r)
        return data


@pytest.mark.slow
def test_power_on_waits_for_the_late_state_change(redfish: str) -> None:
    # sushy-tools applies a power change 1-11 s after the request, like real BMCs
    driver = make_driver("n1", settings(redfish, 0), Runtime(poll_interval=0.25, wait_timeout=20))
    assert asyncio.run(driver.status()) == PowerState.OFF
    asyncio.run(driver.on())
    assert emulator_view(redfish, 0)["PowerState"] == "On"
    assert emulator_view(redfish, 1)["PowerState"] == "Off"


def test_network_boot_once(redfish: str) -> None:
    driver = make_driver("n2", settings(redfish, 1))
    asyncio.run(driver.boot_network_once())
    boot = emulator_view(redfish, 1)["Boot"]
    assert isinstance(boot, dict)
    assert boot["BootSourceOverrideTarget"] == "Pxe"
    # the emulator always reports "Continuous" (it ignores BootSourceOverrideEnabled)


def test_several_systems_need_a_system_id(redfish: str) -> None:
    driver = make_driver("n1", settings(redfish, None), Runtime(attempts=1))
    with pytest.raises(SettingsError, match="2 systems: set the power option system_id"):
        asyncio.run(driver.status())


def test_no_serial_console_is_reported(redfish: str) -> None:
    with pytest.raises(NotSupported, match="no serial console"):
        make_driver("n1", settings(redfish, 0)).console()


def test_status_of_many_nodes_shares_one_connection(redfish: str) -> None:
    targets = [PowerTarget(f"n{i}", settings(redfish, i % 2)) for i in range(20)]
    rt = Runtime()
    results = asyncio.run(run_power(targets, Action.STATUS, concurrency=8, runtime=rt))
    assert all(r.ok for r in results), results
    assert {r.result for r in results} <= {"on", "off"}
    assert sum(1 for k in rt.shared if len(k) == 4) == 1  # one service connection
