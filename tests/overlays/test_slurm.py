"""The slurm overlay set (munge + slurm-config) rendered for a tagged cluster is golden.

golden-slurm/<node>/<path> holds each file; golden-slurm/<node>.files lists
`mode owner overlay path`. Regenerate after a deliberate template change with
`CORRAL_UPDATE_GOLDEN=1 pytest tests/overlays/test_slurm.py` and review the diff.
"""

from __future__ import annotations

import copy
import gzip
import io
import os
import shutil
import tarfile
from pathlib import Path
from typing import Any

import pytest

from corral.config import Paths
from corral.inventory.index import Inventory
from corral.inventory.models import Cluster
from corral.overlays import overlay_archive, sources
from corral.overlays.render import OverlayRenderer, RenderedOverlay
from corral.overlays.runtime import runtime_document
from tests.overlays.inventory import CLUSTER

GOLDEN = Path(__file__).parent / "golden-slurm"
DATA = Path(__file__).parent / "data"
UPDATE = os.environ.get("CORRAL_UPDATE_GOLDEN") == "1"
NODES = ("n1", "n2", "n3")
# what the agents of n1 and n3 reported (n2's facts are set in the inventory)
REPORTED: dict[str, dict[str, Any]] = {
    "n1": {"cpus": 8, "memory_mib": 15990, "gpus": []},
    "n3": {"cpus": 4, "memory_mib": 7960, "gpus": []},
}


def slurm_inventory() -> Inventory:
    data = copy.deepcopy(CLUSTER)
    data["profiles"][0]["tags"]["slurm"] = "compute"
    data["profiles"][0]["overlays"] = ["system", "slurm"]
    data["nodes"][1]["tags"] = {"slurm": "controller"}
    return Inventory.from_cluster(Cluster.model_validate(data))


@pytest.fixture
def slurm_paths(fixed_paths: Paths) -> Paths:
    shutil.copytree(DATA / "secrets", fixed_paths.home / "secrets")
    return fixed_paths


def manifest(rendered: RenderedOverlay) -> str:
    return "".join(
        f"{f.mode:04o} {f.owner or 'root:root'} {rendered.origins[p]} {p}\n"
        for p, f in sorted(rendered.files.items())
    )


def render(paths: Paths, node: str) -> RenderedOverlay:
    return OverlayRenderer(paths).render(slurm_inventory(), node, ["slurm"], REPORTED)


@pytest.mark.parametrize("node", NODES)
def test_slurm_set_matches_golden(node: str, slurm_paths: Paths) -> None:
    rendered = render(slurm_paths, node)
    if UPDATE:
        shutil.rmtree(GOLDEN / node, ignore_errors=True)
        for path, file in rendered.files.items():
            target = GOLDEN / node / path.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(file.data)
        (GOLDEN / f"{node}.files").write_text(manifest(rendered))
    root = GOLDEN / node
    expected = {
        "/" + p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()
    }
    assert {p: f.data for p, f in rendered.files.items()} == expected
    assert manifest(rendered) == (GOLDEN / f"{node}.files").read_text()


def test_every_node_gets_the_same_slurm_conf_naming_each_node_and_the_controller(
    slurm_paths: Paths,
) -> None:
    confs = {render(slurm_paths, n).files["/etc/slurm/slurm.conf"].data for n in NODES}
    assert len(confs) == 1
    text = confs.pop().decode()
    assert "SlurmctldHost=n2(10.77.0.12)" in text
    assert "NodeName=n1 NodeAddr=10.77.0.11 CPUs=8 RealMemory=15670 State=UNKNOWN" in text
    assert "NodeName=n2 NodeAddr=10.77.0.12 RealMemory=4014 Gres=gpu:2 State=UNKNOWN" in text
    assert "GresTypes=gpu" in text
    assert "PartitionName=compute Nodes=n1,n2,n3" in text


def test_munge_key_is_made_once_and_shared_0400_munge(paths: Paths) -> None:
    keys = {render(paths, n).files["/etc/munge/munge.key"] for n in NODES}
    assert len(keys) == 1
    key = keys.pop()
    assert (key.mode, key.owner) == (0o400, "munge:munge")
    assert len(key.data.strip()) >= 64
    stored = paths.home / "secrets" / "munge.key"
    assert stored.read_bytes() == key.data
    assert stored.stat().st_mode & 0o777 == 0o600
    assert (paths.home / "secrets").stat().st_mode & 0o777 == 0o700


def test_archive_carries_the_munge_owner_names_with_uid_0(slurm_paths: Paths) -> None:
    raw = gzip.decompress(overlay_archive(render(slurm_paths, "n1")))
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        info = tar.getmember("etc/munge/munge.key")
    assert (info.uname, info.gname, info.uid, info.mode) == ("munge", "munge", 0, 0o400)


def test_runtime_document_has_slurm_conf_with_its_reconfigure_script(slurm_paths: Paths) -> None:
    import json

    doc = json.loads(runtime_document(slurm_paths, slurm_inventory(), "n1", REPORTED).body)
    by_name = {o["name"]: o for o in doc["overlays"]}
    assert by_name["slurm-config"]["reload"] == "/usr/lib/corral/slurm-reconfigure"
    munge = by_name["munge"]["files"]
    assert [(f["path"], f["owner"]) for f in munge if "owner" in f] == [
        ("/etc/munge/munge.key", "munge:munge")
    ]


def test_slurm_set_members_exist() -> None:
    for member in sources.OVERLAY_SETS["slurm"]:
        assert (sources.BUILTIN_ROOT / member).is_dir()


def test_mpi_hostfiles_have_a_line_per_node_with_slots_from_cpus(slurm_paths: Paths) -> None:
    files = render(slurm_paths, "n3").files
    assert files["/etc/corral/hostfiles/all"].data == b"n1 slots=8\nn2 slots=1\nn3 slots=4\n"
    assert files["/etc/corral/hostfiles/tag-slurm-compute"].data == b"n1 slots=8\nn3 slots=4\n"
    assert files["/etc/corral/hostfiles/profile-disk"].data == b"n2 slots=1\n"
