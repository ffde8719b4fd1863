"""The clusterhat driver. This machine's kernel has no gpio-sim (no configfs, no module),
so gpio mode runs against FakeHatChip, a named fake of a Cluster HAT v1.x's documented
lines (BCM 5 ALERT, 6/13/19/26 = P1-P4, active high); clusterctrl mode runs a fake
`clusterctrl` script that answers as the HAT's tool does (`on|off pN`, `status` with
`pN:0|1` lines, `ERROR: Valid options are p1-p4` for a bad slot)."""

from __future__ import annotations

import asyncio
import stat
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from corral.inventory.models import PowerSettings
from corral.power import Action, FinalError, PowerTarget, Runtime, make_driver, run_power
from corral.power.clusterhat import ClusterHatDriver, Lines
from corral.power.registry import drivers


class FakeHatChip:
    """A fake gpiochip with a Cluster HAT v1.x on it: 54 lines, all low at power-up."""

    def __init__(self) -> None:
        self.values = dict.fromkeys(range(54), False)
        self.writes: list[tuple[int, bool]] = []

    def get(self, line: int) -> bool:
        return self.values[line]

    def set(self, line: int, on: bool) -> None:
        self.writes.append((line, on))
        self.values[line] = on


@pytest.fixture
def chip() -> Iterator[FakeHatChip]:
    """A FakeHatChip that the driver class `OnFakeChip` opens as /dev/gpiochip0."""
    fake = FakeHatChip()
    OnFakeChip.chip = fake
    yield fake
    del OnFakeChip.chip


class OnFakeChip(ClusterHatDriver):
    chip: FakeHatChip

    def open_lines(self, chip: str) -> Lines:
        assert chip == "/dev/gpiochip0"
        return self.chip


def fast() -> Runtime:
    return Runtime(poll_interval=0.01, wait_timeout=2, backoff=0.01)


def test_the_driver_is_an_entry_point() -> None:
    assert drivers()["clusterhat"] is ClusterHatDriver


def test_gpio_mode_drives_the_slots_v1_line(chip: FakeHatChip) -> None:
    power = PowerSettings(driver="clusterhat", slot=3)
    driver = OnFakeChip.from_settings("zero3", power, fast())
    asyncio.run(driver.on())
    assert chip.writes == [(19, True)] and chip.values[19]
    assert str(asyncio.run(driver.status())) == "on"
    asyncio.run(driver.off())
    assert chip.writes[-1] == (19, False)
    assert str(asyncio.run(driver.status())) == "off"


def test_bad_lines_setting_is_named(chip: FakeHatChip) -> None:
    power = PowerSettings(driver="clusterhat", slot=1, options={"lines": "1,2"})
    driver = OnFakeChip.from_settings("zero1", power, fast())
    with pytest.raises(FinalError, match="must be 4 line numbers"):
        asyncio.run(driver.on())


def test_gpio_mode_without_the_chip_says_which_device() -> None:
    """The real libgpiod call: this machine has no GPIO chips at all."""
    power = PowerSettings(driver="clusterhat", slot=1, options={"chip": "/dev/gpiochip77"})
    with pytest.raises(FinalError, match="gpiochip77"):
        asyncio.run(make_driver("zero1", power, fast()).status())


FAKE_CLUSTERCTRL = """#!{python}
# a fake of the Cluster HAT's clusterctrl: power bits kept in a file
import sys
from collections.abc import Iterator
from pathlib import Path
state = Path({state!r})
bits = state.read_text().split() if state.exists() else ["0"] * 4
cmd, args = sys.argv[1], sys.argv[2:]
if cmd == "status":
    print("clusterhat:1")
    print("maxpi:4")
    for n, bit in enumerate(bits, 1):
        print(f"p{{n}}:{{bit}}")
    sys.exit(0)
for zero in args:
    if zero[0] != "p" or not 1 <= int(zero[1:]) <= 4:
        print("ERROR: Valid options are p1-p4")
        sys.exit(1)
    bits[int(zero[1:]) - 1] = "1" if cmd == "on" else "0"
state.write_text(" ".join(bits))
"""


@pytest.fixture
def clusterctrl(tmp_path: Path) -> tuple[Path, Path]:
    state = tmp_path / "power"
    program = tmp_path / "clusterctrl"
    program.write_text(FAKE_CLUSTERCTRL.format(python=sys.executable, state=str(state)))
    program.chmod(program.stat().st_mode | stat.S_IXUSR)
    return program, state


def test_clusterctrl_mode_powers_four_zeros(clusterctrl: tuple[Path, Path]) -> None:
    program, state = clusterctrl
    opts = {"mode": "clusterctrl", "clusterctrl": str(program)}
    targets = [
        PowerTarget(f"z{n}", PowerSettings(driver="clusterhat", slot=n, options=opts))
        for n in (1, 2, 4)
    ]
    results = asyncio.run(run_power(targets, Action.ON, concurrency=1, runtime=fast()))
    assert all(r.ok for r in results), results
    assert state.read_text().split() == ["1", "1", "0", "1"]
    results = asyncio.run(run_power(targets[:1], Action.OFF, runtime=fast()))
    assert results[0].ok and state.read_text().split()[0] == "0"
    results = asyncio.run(run_power(targets, Action.STATUS, runtime=fast()))
    assert [r.result for r in results] == ["off", "on", "on"]


def test_clusterctrl_over_ssh_builds_one_remote_command() -> None:
    opts = {"mode": "clusterctrl", "address": "cnat.local", "identity_file": "/k"}
    power = PowerSettings(driver="clusterhat", slot=2, options=opts)
    driver = make_driver("z2", power)
    assert isinstance(driver, ClusterHatDriver)
    argv = driver.argv("on", "p2")
    assert argv[0] == "ssh" and "BatchMode=yes" in argv
    assert argv[-4:] == ["pi", "cnat.local", "--", "clusterctrl on p2"]


def test_the_hat_has_no_console_or_board_actions() -> None:
    power = PowerSettings(driver="clusterhat", slot=1)
    driver = make_driver("z1", power)
    with pytest.raises(FinalError, match="driver clusterhat cannot flash"):
        driver.require(Action.FLASH)
    with pytest.raises(FinalError, match="cannot console"):
        driver.console()
