"""The agent's facts, read from /proc and /sys, in the shape the server's model accepts."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from corral.inventory.facts import NodeFacts
from tests.agent.conftest import AGENT, PYTHON, hardware


def agent_facts(root: Path) -> dict[str, object]:
    argv = [PYTHON, "-I", "-S", str(AGENT), "--facts", "--root", str(root)]
    out = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=30).stdout
    data: dict[str, object] = json.loads(out)
    return data


def test_facts_of_a_vm_tree_count_cpus_memory_the_gpu_the_disk_and_the_nic(
    tmp_path: Path,
) -> None:
    hardware(tmp_path)
    facts = NodeFacts.model_validate(agent_facts(tmp_path))
    assert (facts.cpus, facts.memory_mib, facts.kernel) == (4, 3936, "6.1.0-28-amd64")
    assert facts.cpu_model == "QEMU Virtual CPU version 2.5+"
    assert [(g.pci, g.vendor, g.device, g.vendor_name) for g in facts.gpus] == [
        ("0000:01:00.0", "0x10de", "0x20b0", "NVIDIA")
    ]  # QEMU's VGA is not a GPU
    assert [(d.name, d.size_bytes, d.model, d.rotational) for d in facts.disks] == [
        ("vda", 20 * 1024**3, "QEMU HARDDISK", True)
    ]  # no loop device
    assert [(n.name, n.mac, n.speed_mbps, n.state) for n in facts.nics] == [
        ("enp0s1", "52:54:00:00:00:01", 1000, "up")
    ]  # no loopback, no bridge


def test_facts_of_this_machine_match_what_the_kernel_says() -> None:
    facts = NodeFacts.model_validate(agent_facts(Path("/")))
    assert facts.cpus == os.cpu_count()
    physical = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2**20
    assert facts.memory_mib is not None
    assert abs(facts.memory_mib - physical) <= physical // 20
    assert facts.kernel == os.uname().release
    assert "lo" not in {n.name for n in facts.nics}


def test_an_empty_root_gives_empty_facts_not_a_crash(tmp_path: Path) -> None:
    facts = NodeFacts.model_validate(agent_facts(tmp_path))
    assert facts == NodeFacts()
