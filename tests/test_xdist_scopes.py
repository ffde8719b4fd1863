"""The units `make test` hands to its workers name real modules, and every module that uses
the shared Debian lab is in that lab's unit (else a second worker would boot a second lab)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.helpers.xdist_scopes import (
    LAB_PER_TEST,
    SHARED_LABS,
    UNIT_MINUTES,
    minutes_of,
    scope_of,
)

ROOT = Path(__file__).parent.parent


def test_every_module_and_package_named_exists() -> None:
    for module in LAB_PER_TEST:
        assert (ROOT / module).is_file(), module
    for package in SHARED_LABS:
        assert (ROOT / package / "conftest.py").is_file(), package


def test_every_unit_with_a_length_is_a_real_unit() -> None:
    modules = {str(p.relative_to(ROOT)) for p in (ROOT / "tests").rglob("test_*.py")}
    for unit in UNIT_MINUTES:
        module, _, test = unit.partition("::")
        assert unit in SHARED_LABS.values() or module in modules, unit
        assert not test or f"def {test}(" in (ROOT / module).read_text(), unit
        assert scope_of(f"{unit}::test_x" if not test else unit) in (unit, module), unit


def test_every_module_using_the_debian_lab_shares_one_unit() -> None:
    users = {
        str(path.relative_to(ROOT))
        for path in (ROOT / "tests").rglob("test_*.py")
        if path != Path(__file__) and "debian_lab: DebianLab" in path.read_text()
    }
    assert users, "no module uses the debian_lab fixture: update this test"
    assert {scope_of(f"{m}::test_x") for m in users} == {"debian_lab"}


def test_the_suite_starts_with_the_longest_units_each_whole() -> None:
    collected = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    units = [scope_of(line) for line in collected if "::" in line]
    starts = list(dict.fromkeys(units))  # the units in the order they start
    assert len(starts) == len({*units}), "a unit's tests are not together"
    known = [minutes_of(unit) for unit in starts[: len(UNIT_MINUTES)]]
    assert all(known) and known == sorted(known, reverse=True), starts[: len(UNIT_MINUTES)]
