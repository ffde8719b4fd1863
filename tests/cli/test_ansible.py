"""`corral ansible-inventory` read by the real `ansible-inventory` (ansible-core)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from corral.app import Corral
from corral.config import Settings
from corral.inventory import ops
from tests.cli.conftest import CORRAL, Run
from tests.conftest import need

ANSIBLE_INVENTORY = Path(sys.executable).parent / "ansible-inventory"
BMC_PASSWORD = "bmc-s3cret-do-not-print"


@pytest.fixture
def cluster(home: Path) -> Path:
    """Two profiles, tags, a BMC password; and the two-line script the help shows."""
    corral = Corral(Settings.from_env({"CORRAL_HOME": str(home)}))

    def build(inv: ops.Inventory) -> None:
        ops.add_network(inv, {"name": "prov", "cidr": "10.7.0.0/24"})
        ops.add_profile(inv, {"name": "compute", "networks": ["prov"], "tags": {"rack": "a1"}})
        ops.add_profile(inv, {"name": "gpu-nodes", "tags": {"gpu": "yes"}})
        ops.add_nodes(inv, ["n1", "n2"], {"profiles": ["compute"]})
        ops.add_nodes(inv, ["g1"], {"profiles": ["compute", "gpu-nodes"]})
        power = {"driver": "ipmi", "username": "admin", "password": BMC_PASSWORD}
        ops.set_nodes(inv, ["g1"], {"power": power})

    corral.change(build)
    script = home / "corral-inventory"
    script.write_text(f'#!/bin/sh\nexec "{CORRAL}" ansible-inventory "$@"\n')
    script.chmod(0o700)
    return script


def ansible(script: Path, home: Path, *args: str) -> str:
    need(ANSIBLE_INVENTORY.exists(), "ansible-core is not installed in the venv")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CORRAL_")}
    env.update(CORRAL_HOME=str(home), ANSIBLE_HOME=str(home / "ansible"))
    argv = [str(ANSIBLE_INVENTORY), "-i", str(script), *args]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert "WARNING" not in done.stderr, done.stderr
    return done.stdout


def test_ansible_sees_groups_by_profile_and_tag(cluster: Path, home: Path) -> None:
    seen = json.loads(ansible(cluster, home, "--list"))
    assert sorted(seen["compute"]["hosts"]) == ["g1", "n1", "n2"]
    assert seen["gpu_nodes"]["hosts"] == ["g1"]
    assert seen["gpu_yes"]["hosts"] == ["g1"]
    assert sorted(seen["rack_a1"]["hosts"]) == ["g1", "n1", "n2"]


def test_host_variables_are_the_effective_settings_with_the_address(
    cluster: Path, home: Path
) -> None:
    seen = json.loads(ansible(cluster, home, "--host", "g1"))
    assert seen["ansible_host"].startswith("10.7.0.")
    assert seen["corral_tags"] == {"rack": "a1", "gpu": "yes"}
    assert seen["corral_profiles"] == ["compute", "gpu-nodes"]
    assert seen["corral_power_driver"] == "ipmi"


def test_no_secret_reaches_ansible(cluster: Path, home: Path) -> None:
    listing = ansible(cluster, home, "--list")
    assert BMC_PASSWORD not in listing
    assert "password" not in listing


def test_an_unknown_host_is_one_line_and_exit_1(corral: Run, cluster: Path) -> None:
    result = corral("ansible-inventory", "--host", "nope")
    assert result.code == 1
    assert "no such node: nope" in result.error_line
