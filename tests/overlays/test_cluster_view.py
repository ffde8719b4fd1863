"""Templates see the whole cluster: every node's profiles, tags and facts, and groups of them.

The `cluster-view` test overlay writes an MPI hostfile from a profile, Slurm-style
node lines with facts, a controller chosen by tag and partitions by tag; its output
for the fixed inventory plus agent reports is golden (golden-cluster/). Regenerate
with `CORRAL_UPDATE_GOLDEN=1 pytest tests/overlays/test_cluster_view.py`.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from corral.config import Paths
from corral.inventory.facts import DiskFact, NicFact, NodeFacts
from corral.inventory.index import Inventory
from corral.overlays.render import OverlayRenderer
from tests.overlays.conftest import DATA

GOLDEN = Path(__file__).parent / "golden-cluster"
UPDATE = os.environ.get("CORRAL_UPDATE_GOLDEN") == "1"


def reported() -> dict[str, dict[str, object]]:
    """Agent reports for n1 and n2 (n3 has none), made with the model the server validates."""
    n1 = NodeFacts(
        cpus=8,
        memory_mib=16000,
        disks=[DiskFact(name="nvme0n1", size_bytes=512 * 10**9, rotational=False)],
        nics=[NicFact(name="enp1s0", mac="52:54:00:00:00:01", speed_mbps=10000, state="up")],
    )
    n2 = NodeFacts(cpus=4, memory_mib=8000)
    return {
        "n1": {**n1.model_dump(mode="json"), "reported": 1000.0},
        "n2": {**n2.model_dump(mode="json"), "reported": 1001.0},
    }


@pytest.fixture
def user_paths(paths: Paths) -> Paths:
    shutil.copytree(DATA / "overlays", paths.home / "overlays")
    return paths


def test_templates_see_profiles_tags_facts_and_groups(inv: Inventory, user_paths: Paths) -> None:
    rendered = OverlayRenderer(user_paths).render(inv, "n1", ["cluster-view"], reported())
    if UPDATE:
        shutil.rmtree(GOLDEN, ignore_errors=True)
        for path, item in rendered.files.items():
            (GOLDEN / path.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
            (GOLDEN / path.lstrip("/")).write_bytes(item.data)
    golden = {
        "/" + p.relative_to(GOLDEN).as_posix(): p.read_bytes()
        for p in GOLDEN.rglob("*")
        if p.is_file()
    }
    assert {p: f.data for p, f in rendered.files.items()} == golden


def test_inventory_facts_win_over_the_agents_report(inv: Inventory, user_paths: Paths) -> None:
    ctx = OverlayRenderer(user_paths).context(inv, "n2", reported())
    # n2's inventory sets gpus and memory_mib; cpus comes from its agent
    assert (ctx.node.facts.cpus, ctx.node.facts.memory_mib, ctx.node.facts.gpus) == (4, 4096, 2)
    n3 = next(h for h in ctx.cluster.hosts if h.name == "n3")
    assert (n3.facts.cpus, n3.facts.gpus, n3.facts.reported) == (None, 0, None)  # no report


def test_a_hosts_template_reading_tags_renders(inv: Inventory, user_paths: Paths) -> None:
    """The bug this fixes: "'HostView object' has no attribute 'tags'"."""
    ctx = OverlayRenderer(user_paths).context(inv, "n3")
    assert [h.tags for h in ctx.cluster.hosts] == [
        {"partition": "batch", "rack": "r1"},
        {"partition": "batch", "role": "controller"},
        {"partition": "batch"},
    ]
    assert [h.name for h in ctx.cluster.by_tag["role"]["controller"]] == ["n2"]
    assert [h.name for h in ctx.cluster.by_profile["disk"]] == ["n2"]
