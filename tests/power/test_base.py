"""The driver base: retry with backoff on an injected clock, settings as data, scrubbing."""

from __future__ import annotations

import asyncio

import pytest
from pydantic import SecretStr

from corral.inventory.models import PowerSettings
from corral.power import (
    Action,
    Capability,
    FinalError,
    NotSupported,
    PowerState,
    PowerTarget,
    RetryableError,
    SettingsError,
    drivers,
    run_power,
)
from corral.testing import FakeClock, FakeDriver


def make(clock: FakeClock, address: str = "10.0.0.1", **kw: float) -> FakeDriver:
    FakeDriver.forget()
    power = PowerSettings(driver="fake", address=address, password=SecretStr("hunter2"))
    driver = FakeDriver.from_settings("n1", power, clock.runtime(**kw))
    assert isinstance(driver, FakeDriver)
    return driver


def test_retryable_errors_are_retried_with_exponential_backoff() -> None:
    clock = FakeClock()
    driver = make(clock, attempts=4, backoff=0.5)
    driver.failures = [RetryableError("busy"), TimeoutError("slow"), ConnectionRefusedError()]
    asyncio.run(driver.on())
    assert driver.calls == 4
    assert clock.sleeps == [0.5, 1.0, 2.0]
    assert driver.state == PowerState.ON


def test_final_errors_are_not_retried() -> None:
    clock = FakeClock()
    driver = make(clock)
    driver.failures = [FinalError("bad password hunter2")]
    with pytest.raises(FinalError) as err:
        asyncio.run(driver.on())
    assert driver.calls == 1 and clock.sleeps == []
    assert "hunter2" not in str(err.value) and "***" in str(err.value)


def test_last_retryable_error_is_raised_scrubbed() -> None:
    clock = FakeClock()
    driver = make(clock, attempts=2)
    driver.failures = [RetryableError("x hunter2"), RetryableError("y hunter2")]
    with pytest.raises(RetryableError, match=r"y \*\*\*"):
        asyncio.run(driver.on())


def test_capabilities_are_checked_before_trying() -> None:
    driver = make(FakeClock())
    with pytest.raises(NotSupported, match="cannot reset"):
        asyncio.run(driver.reset())
    with pytest.raises(NotSupported, match="cannot console"):
        driver.console()


def test_wait_for_is_bounded_by_the_injected_clock() -> None:
    clock = FakeClock()
    driver = make(clock, wait_timeout=3.0, poll_interval=0.5)
    with pytest.raises(RetryableError, match="did not report on"):
        asyncio.run(driver.wait_for(PowerState.ON))
    assert clock.now == pytest.approx(3.0)


@pytest.mark.parametrize(
    ("power", "message"),
    [
        (PowerSettings(driver="fake"), "needs setting 'address'"),
        (PowerSettings(driver="fake", address="x", slot=2), "takes no setting 'slot'"),
        (PowerSettings(driver="fake", address="x", options={"colour": "red"}), "'colour'"),
    ],
)
def test_settings_are_checked_against_the_declaration(power: PowerSettings, message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        FakeDriver.from_settings("n1", power)


def test_defaults_and_options_reach_the_driver() -> None:
    power = PowerSettings(driver="fake", address="x", options={"initial": "on"})
    assert FakeDriver.from_settings("n1", power).config.get("initial") == "on"
    assert FakeDriver.from_settings("n1", PowerSettings(address="x")).config.get("initial") == "off"


def test_every_builtin_driver_is_registered_and_declares_its_settings() -> None:
    found = drivers()
    assert {"ipmi", "redfish", "turingpi", "qemu", "ssh", "manual"} <= set(found)
    for name, cls in found.items():
        assert cls.name == name
        assert Capability.STATUS in cls.capabilities
        secret = [s.name for s in cls.settings if s.secret]
        assert secret in ([], ["password"])


def test_runner_reports_each_node_and_keeps_going() -> None:
    targets = [
        PowerTarget("n1", PowerSettings(driver="manual", address="rack 1")),
        PowerTarget("n2", PowerSettings()),
        PowerTarget("n3", PowerSettings(driver="nosuch")),
        PowerTarget("n4", PowerSettings(driver="manual", options={"instructions": "top"})),
    ]
    results = asyncio.run(run_power(targets, Action.CYCLE, concurrency=2))
    assert [r.node for r in results] == ["n1", "n2", "n3", "n4"]
    assert results[0].ok and results[0].result == "by hand: switch off and on again n1 (rack 1)"
    assert "no power driver" in (results[1].error or "")
    assert "unknown power driver 'nosuch'" in (results[2].error or "")
    assert results[3].result.endswith("; top")
    status = asyncio.run(run_power(targets[:1], Action.STATUS))
    assert status[0].result == "unknown"


def test_power_actions_and_capabilities_are_one_enum() -> None:
    assert Action is Capability
    result = asyncio.run(
        run_power([PowerTarget("n1", PowerSettings(driver="fake", address="c"))], Action.CONSOLE)
    )
    assert not result[0].ok and "console is not a power action" in (result[0].error or "")


def test_the_shipped_fake_driver_is_registered_and_keeps_its_machine_between_calls() -> None:
    FakeDriver.forget()
    assert drivers()["fake"] is FakeDriver
    target = PowerTarget("n1", PowerSettings(driver="fake", address="rack1-u7"))
    assert asyncio.run(run_power([target], Action.STATUS))[0].result == "off"
    assert asyncio.run(run_power([target], Action.ON))[0].ok
    assert asyncio.run(run_power([target], Action.STATUS))[0].result == "on"
    other = PowerTarget("n2", PowerSettings(driver="fake", address="rack1-u8"))
    assert asyncio.run(run_power([other], Action.STATUS))[0].result == "off"


def test_the_fake_driver_refuses_a_bad_initial_state_by_name() -> None:
    power = PowerSettings(driver="fake", address="x9", options={"initial": "sideways"})
    result = asyncio.run(run_power([PowerTarget("n1", power)], Action.STATUS))
    assert result[0].error == "node n1: initial must be on or off"


def test_every_driver_takes_the_console_log_setting() -> None:
    from corral.inventory.models import PowerSettings
    from corral.power.base import configure
    from corral.power.registry import drivers

    for name, driver in drivers().items():
        power = PowerSettings(driver=name, options={"console_log": "/var/log/n1.console"})
        try:
            config = configure("n1", power, driver.settings)
        except SettingsError as exc:  # a required setting is missing: not what this checks
            assert "needs setting" in str(exc), exc
            continue
        assert config.values["console_log"] == "/var/log/n1.console"
