"""The ipmi driver against ipmi_sim (OpenIPMI's lanserv), checked through ipmitool's own view."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from corral.inventory.models import PowerSettings
from corral.power import (
    Action,
    FinalError,
    PowerError,
    PowerState,
    PowerTarget,
    Runtime,
    make_driver,
    run_power,
)
from corral.power.ipmi import IpmiDriver
from tests.conftest import need_tool
from tests.power.peers import IpmiBmc, ipmi_sim


@pytest.fixture
def bmc(tmp_path: Path) -> Iterator[IpmiBmc]:
    need_tool("ipmi_sim", "ipmitool")
    with ipmi_sim(tmp_path / "bmc") as sim:
        yield sim


def settings(bmc: IpmiBmc, password: str | None = None) -> PowerSettings:
    return PowerSettings(
        driver="ipmi",
        address=bmc.address,
        username=bmc.user,
        password=SecretStr(password or bmc.password),
    )


def fast() -> Runtime:
    return Runtime(poll_interval=0.1, wait_timeout=10, backoff=0.1)


def test_power_on_off_status_seen_by_ipmitool(bmc: IpmiBmc) -> None:
    driver = make_driver("n1", settings(bmc), fast())
    assert asyncio.run(driver.status()) == PowerState.OFF
    asyncio.run(driver.on())
    assert "Chassis Power is on" in bmc.ipmitool("chassis", "power", "status")
    assert asyncio.run(driver.status()) == PowerState.ON
    asyncio.run(driver.off())
    assert "Chassis Power is off" in bmc.ipmitool("chassis", "power", "status")


def test_cycle_reset_and_network_boot(bmc: IpmiBmc) -> None:
    driver = make_driver("n1", settings(bmc), fast())
    asyncio.run(driver.cycle())  # from off: just on
    assert "Chassis Power is on" in bmc.ipmitool("chassis", "power", "status")
    asyncio.run(driver.reset())
    asyncio.run(driver.boot_network_once())
    log = Path(f"{bmc.state}.log").read_text()
    assert "reset" in log
    assert "Boot Device to pxe" in bmc.ipmitool("chassis", "bootdev", "pxe") or "boot" in log


def test_wrong_password_fails_and_is_never_shown(bmc: IpmiBmc) -> None:
    # ipmi_sim answers a bad password like an unreachable BMC ("Unable to establish
    # IPMI v2 / RMCP+ session"), so it is retried; real BMCs' "RAKP 2 HMAC is
    # invalid" is final (see test_ipmitool_errors_are_classified)
    driver = make_driver("n1", settings(bmc, password="wrong-pw-123"), Runtime(attempts=1))
    with pytest.raises(PowerError) as err:
        asyncio.run(driver.status())
    assert "wrong-pw-123" not in str(err.value)


def test_password_is_in_the_environment_not_argv(bmc: IpmiBmc) -> None:
    driver = make_driver("n1", settings(bmc), fast())
    assert isinstance(driver, IpmiDriver)
    assert bmc.password not in " ".join(driver.base_argv())
    assert "-E" in driver.base_argv()
    assert driver.env()["IPMI_PASSWORD"] == bmc.password
    plan = driver.console()
    assert plan.argv[-2:] == ("sol", "activate") and bmc.password not in plan.argv
    assert plan.env == {"IPMI_PASSWORD": bmc.password}


def test_unreachable_bmc_fails_alone(bmc: IpmiBmc) -> None:
    good = settings(bmc)
    dead = good.model_copy(update={"address": "127.0.0.1:9"})
    targets = [PowerTarget("n1", good), PowerTarget("n2", dead)]
    rt = Runtime(attempts=1, poll_interval=0.1)
    results = asyncio.run(run_power(targets, Action.STATUS, runtime=rt))
    assert results[0].ok and results[0].result == "off"
    assert not results[1].ok and results[1].result == "failed"
    assert bmc.password not in repr(results) and os.environ.get("IPMI_PASSWORD") is None


@pytest.mark.parametrize(
    ("stderr", "final"),
    [
        ("Error in open session response message : RAKP 2 HMAC is invalid\n", True),
        ("Unauthorized name\n", True),
        ("Error: Unable to establish IPMI v2 / RMCP+ session\n", False),
        ("Unable to Get Channel Cipher Suites\nInsufficient privilege level\n", True),
    ],
)
def test_ipmitool_errors_are_classified(stderr: str, final: bool) -> None:
    from corral.power.ipmi import _classify

    assert isinstance(_classify(stderr, "n1"), FinalError) is final
