"""How `make test` splits the suite over its pytest-xdist workers (see tests/conftest.py).

A unit of work goes to one worker whole. A module is one unit (its module- and session-scoped
fixtures are made once); tests that share one booted lab across modules are one unit; modules
whose tests each boot a lab of their own are split, one unit per test, so that two labs boot
side by side. pytest-xdist's `--dist loadgroup` would read `xdist_group` marks, but it renames
node ids to do so, which pytest 9 no longer honours: these scopes go by the node id alone.
"""

from __future__ import annotations

# modules that share one session-scoped lab (tests/e2e/debian.py): one unit
SHARED_LABS = {
    "tests/e2e/test_debian_boot.py": "debian_lab",
    "tests/e2e/test_debian_ops.py": "debian_lab",
}
# modules whose tests each boot their own lab (the `lab` factory): a unit per test
LAB_PER_TEST = frozenset(
    {
        "tests/e2e/test_firmware_pxe.py",
        "tests/e2e/test_lab_boot.py",
        "tests/e2e/test_scripts_service_stateful.py",
        "tests/e2e/test_stateful_debian.py",
    }
)


def scope_of(nodeid: str) -> str:
    """The unit of work a test belongs to."""
    module = nodeid.split("::", 1)[0]
    if module in SHARED_LABS:
        return SHARED_LABS[module]
    return nodeid if module in LAB_PER_TEST else module
