"""Slurm's power saving calls corral: the rendered settings, and the real program on a live server.

slurm.conf names corral's programs only when a Slurm node is tagged
`slurm-power: save`; the Slurm power token reaches the controller alone. The
program itself (`slurm-power`, shipped in the slurm-config overlay) runs here
as slurmctld would run it, against a real `corral serve` whose nodes use the
`fake` power driver (no BMC runs here; ipmi_sim and sushy-tools are tested
with their drivers elsewhere).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from corral.actions import LocalActions
from corral.config import Paths
from corral.inventory.index import Inventory
from corral.inventory.models import Cluster
from corral.overlays.clustersecrets import SLURM_POWER_TOKEN, ClusterSecrets
from corral.overlays.render import renderer_for
from corral.overlays.sources import BUILTIN_ROOT
from corral.testing.power import FakeDriver
from tests.services.conftest import LiveServer

PROGRAM = BUILTIN_ROOT / "slurm-config/usr/lib/corral/slurm-power"


def power_cluster(saving: tuple[str, ...]) -> dict[str, object]:
    return {
        "cluster": {"name": "hpc"},
        "networks": [{"name": "prov", "cidr": "10.77.0.0/24"}],
        "profiles": [
            {
                "name": "compute",
                "networks": ["prov"],
                "overlays": ["slurm-config"],
                "tags": {"slurm": "compute"},
                "power": {"driver": "fake"},
            }
        ],
        "nodes": [
            {
                "name": name,
                "profiles": ["compute"],
                "power": {"address": name},
                "tags": {"slurm": "controller"}
                if name == "n1"
                else ({"slurm-power": "save"} if name in saving else {}),
            }
            for name in ("n1", "n2", "n3")
        ],
    }


def rendered(home: Path, saving: tuple[str, ...], node: str) -> dict[str, str]:
    inv = Inventory.from_cluster(Cluster.model_validate(power_cluster(saving)))
    out = renderer_for(Paths(home)).render(inv, node, ["slurm-config"])
    return {path: f.data.decode() for path, f in out.files.items()}


def test_slurm_conf_names_corrals_programs_only_for_nodes_tagged_to_save_power(
    tmp_path: Path,
) -> None:
    files = rendered(tmp_path, ("n2", "n3"), "n2")
    conf = files["/etc/slurm/slurm.conf"]
    assert "ResumeProgram=/usr/lib/corral/slurm-resume\n" in conf
    assert "SuspendProgram=/usr/lib/corral/slurm-suspend\n" in conf
    assert "ResumeFailProgram=/usr/lib/corral/slurm-resume-failed\n" in conf
    assert "SuspendExcNodes=n1\n" in conf  # the controller is not tagged: never suspended
    plain = rendered(tmp_path, (), "n2")["/etc/slurm/slurm.conf"]
    assert "Program=" not in plain and "Suspend" not in plain


def test_only_the_controller_gets_the_slurm_power_token_0400_slurm(tmp_path: Path) -> None:
    inv = Inventory.from_cluster(Cluster.model_validate(power_cluster(("n3",))))
    renderer = renderer_for(Paths(tmp_path))
    controller = renderer.render(inv, "n1", ["slurm-config"]).files
    token = controller["/etc/slurm/corral-power.token"]
    assert (token.mode, token.owner) == (0o400, "slurm:slurm")
    kept = ClusterSecrets(tmp_path / "secrets").existing(SLURM_POWER_TOKEN)
    assert kept is not None and token.data.decode().strip() == kept
    for other in ("n2", "n3"):
        assert (
            "/etc/slurm/corral-power.token"
            not in renderer.render(inv, other, ["slurm-config"]).files
        )


@pytest.fixture
def power_server(live_server: LiveServer, tmp_path: Path) -> tuple[LiveServer, Path]:
    """A live server with n1..n3 on the fake driver, and a controller's root with the token."""
    FakeDriver.forget()
    actions = LocalActions(live_server.corral)
    data = power_cluster(("n2", "n3"))
    actions.add_network(data["networks"][0])  # type: ignore[index]
    actions.add_profile(data["profiles"][0])  # type: ignore[index]
    for node in data["nodes"]:  # type: ignore[attr-defined]
        actions.add_nodes([node.pop("name")], node)
    vault = ClusterSecrets(live_server.corral.settings.paths.home / "secrets")
    root = tmp_path / "controller"
    (root / "etc/corral").mkdir(parents=True)
    (root / "etc/slurm").mkdir(parents=True)
    (root / "etc/corral/server").write_text(live_server.url + "\n")
    (root / "etc/slurm/corral-power.token").write_text(vault.slurm_power_token + "\n")
    return live_server, root


def slurm_power(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The program as slurmctld runs it (scontrol is not installed here)."""
    env = {**os.environ, "CORRAL_ROOT": str(root), "PATH": "/usr/bin:/bin"}
    return subprocess.run(
        [sys.executable, str(PROGRAM), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def power_states(server: LiveServer, names: list[str]) -> dict[str, str]:
    results = LocalActions(server.corral).power(names, "status", 8)
    return {r.node: r.result for r in results}


def test_resume_powers_a_slurm_hostlist_on_and_suspend_off_through_corral(
    power_server: tuple[LiveServer, Path],
) -> None:
    server, root = power_server
    assert power_states(server, ["n2", "n3"]) == {"n2": "off", "n3": "off"}
    resumed = slurm_power(root, "resume", "n[2-3]")
    assert resumed.returncode == 0, resumed.stderr
    assert power_states(server, ["n1", "n2", "n3"]) == {"n1": "off", "n2": "on", "n3": "on"}
    suspended = slurm_power(root, "suspend", "n3")
    assert suspended.returncode == 0, suspended.stderr
    assert power_states(server, ["n2", "n3"]) == {"n2": "on", "n3": "off"}


def test_a_node_corral_cannot_power_fails_the_program_with_the_reason(
    power_server: tuple[LiveServer, Path],
) -> None:
    _, root = power_server
    done = slurm_power(root, "resume", "n[2-9]")
    assert done.returncode == 1
    assert "corral power on" in done.stderr and "n[2-9]" in done.stderr
    assert "404" in done.stderr or "no such node" in done.stderr.lower(), done.stderr


def test_a_wrong_power_token_is_refused_and_reported(
    power_server: tuple[LiveServer, Path],
) -> None:
    server, root = power_server
    (root / "etc/slurm/corral-power.token").write_text("corral_not-the-token\n")
    done = slurm_power(root, "resume", "n2")
    assert done.returncode == 1
    assert "corral answered 401" in done.stderr
    assert power_states(server, ["n2"]) == {"n2": "off"}


def test_the_slurm_power_token_may_power_but_not_change_the_inventory(
    power_server: tuple[LiveServer, Path],
) -> None:
    server, root = power_server
    token = (root / "etc/slurm/corral-power.token").read_text().strip()
    body = json.dumps({"name": "sneaky"}).encode()
    req = urllib.request.Request(f"{server.url}/api/v1/profiles", data=body, method="POST")
    req.add_header("Authorization", f"Bearer {token}")
    req.add_header("Content-Type", "application/json")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(req, timeout=30)
    assert refused.value.code == 403
    assert "slurm-power has role operator" in refused.value.read().decode()
