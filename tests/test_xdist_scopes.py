"""The units `make test` hands to its workers name real modules, and every module that uses
the shared Debian lab is in that lab's unit (else a second worker would boot a second lab)."""

from __future__ import annotations

from pathlib import Path

from tests.helpers.xdist_scopes import LAB_PER_TEST, SHARED_LABS, scope_of

ROOT = Path(__file__).parent.parent


def test_every_module_named_exists() -> None:
    for module in [*SHARED_LABS, *LAB_PER_TEST]:
        assert (ROOT / module).is_file(), module


def test_every_module_using_the_debian_lab_shares_one_unit() -> None:
    users = {
        str(path.relative_to(ROOT))
        for path in (ROOT / "tests").rglob("test_*.py")
        if path != Path(__file__) and "debian_lab: DebianLab" in path.read_text()
    }
    assert users, "no module uses the debian_lab fixture: update this test"
    assert {scope_of(f"{m}::test_x") for m in users} == {"debian_lab"}


def test_a_lab_per_test_module_is_split_and_other_modules_are_whole() -> None:
    one, two = (f"tests/e2e/test_lab_boot.py::test_{n}" for n in ("a", "b"))
    assert scope_of(one) != scope_of(two)
    assert scope_of("tests/store/test_store.py::test_a[sqlite]") == "tests/store/test_store.py"
