"""How `make test` splits the suite over its pytest-xdist workers (see tests/conftest.py).

A unit of work goes to one worker whole. A module is one unit (its module- and session-scoped
fixtures are made once); a package whose tests share one booted lab (its package-scoped
fixture) is one unit; modules whose tests each boot a lab of their own are split, one unit
per test, so that two labs boot side by side. pytest-xdist's `--dist loadgroup` would read
`xdist_group` marks, but it renames node ids to do so, which pytest 9 no longer honours: these
scopes go by the node id alone.

Units start heaviest first (longest-processing-time first), so that the two long labs start
at once on the two workers and the short units fill in at the end. A worker is handed its
next unit when its current one has two tests left, so a long unit queued behind another
would start late: UNIT_MINUTES says which units are long (measured on 2 cores, TCG).
"""

from __future__ import annotations

# packages whose tests share one lab made by a package-scoped fixture: one unit each
SHARED_LABS = {"tests/e2e/debian_lab/": "debian_lab"}
# modules whose tests each boot their own lab (the `lab` factory): a unit per test
LAB_PER_TEST = frozenset(
    {
        "tests/e2e/test_arm64_boot.py",
        "tests/e2e/test_firmware_pxe.py",
        "tests/e2e/test_lab_boot.py",
        "tests/e2e/test_scripts_service_stateful.py",
        "tests/e2e/test_stateful_debian.py",
    }
)
# worker minutes of the long units, from a whole `make test` run with two workers and no
# test cache (2026-12-03, 2 cores, the Debian trees built in the run; slurm: + power saving
# and NFS, estimated); a unit not named is short
UNIT_MINUTES = {
    "debian_lab": 23.0,
    "tests/e2e/test_slurm_lab.py": 19.0,
    "tests/e2e/test_stateful_debian.py::test_a_stateful_uefi_node_boots_grub_from_its_esp_with_no_download": 6.0,  # noqa: E501
    "tests/e2e/test_lab_boot.py::test_http_fallback_and_reset_during_download": 3.1,
    "tests/e2e/test_scripts_service_stateful.py::test_a_stateful_node_installs_onto_an_xfs_root_and_installs_again": 2.8,  # noqa: E501
    "tests/e2e/test_arm64_boot.py::test_arm64_uefi_vm_netboots_the_arm64_image_as_itself": 2.6,
    # measured alone (2026-12-04, 2 cores, load 1.7-3.5): 113 s and 126 s
    "tests/e2e/test_arm64_boot.py::test_arm64_uefi_http_boot_boots_a_ram_disk_image_as_itself": 2.1,
    "tests/e2e/test_home_network.py": 2.1,
    "tests/e2e/test_failover_boot.py": 1.6,
    "tests/e2e/test_firmware_pxe.py::test_uefi_ovmf_loads_ipxe_efi_over_tftp_then_script": 2.0,
}


def scope_of(nodeid: str) -> str:
    """The unit of work a test belongs to."""
    module = nodeid.split("::", 1)[0]
    for package, unit in SHARED_LABS.items():
        if module.startswith(package):
            return unit
    return nodeid if module in LAB_PER_TEST else module


def minutes_of(scope: str) -> float:
    """How long a unit takes, as far as we know (0 for the short ones)."""
    return UNIT_MINUTES.get(scope, 0.0)
