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
    PowerDriver,
    PowerState,
    PowerTarget,
    RetryableError,
    Runtime,
    Setting,
    SettingsError,
    drivers,
    run_power,
)


class FakeClock:
    """Time that moves only when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def runtime(self, **kw: float) -> Runtime:
        return Runtime(sleep=self.sleep, clock=self.clock, **kw)  # type: ignore[arg-type]


class FakeDriver(PowerDriver):
    """A scripted driver: `failures` is the list of errors its hook raises first."""

    name = "fake"
    capabilities = frozenset({Capability.ON, Capability.STATUS})
    settings = (
        Setting("address", "where", required=True),
        Setting("password", "secret", secret=True),
        Setting("mode", "an option", default="a"),
    )

    def __init__(self, *a: object, **kw: object) -> None:
        super().__init__(*a, **kw)  # type: ignore[arg-type]
        self.failures: list[Exception] = []
        self.calls = 0
        self.state = PowerState.OFF

    async def _on(self) -> None:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        self.state = PowerState.ON

    async def _status(self) -> PowerState:
        return self.state


def make(clock: FakeClock, **kw: float) -> FakeDriver:
    power = PowerSettings(driver="fake", address="10.0.0.1", password=SecretStr("hunter2"))
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
    power = PowerSettings(driver="fake", address="x", options={"mode": "b"})
    assert FakeDriver.from_settings("n1", power).config.get("mode") == "b"
    assert FakeDriver.from_settings("n1", PowerSettings(address="x")).config.get("mode") == "a"


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
