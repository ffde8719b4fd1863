"""A node's hardware facts: what its agent found, and what the inventory says instead.

The agent reads /proc and /sys on the node and reports `NodeFacts` with its
heartbeats; the server validates the report with this model (bounded lists
and strings, unknown keys refused) and keeps it. A profile or node may set
`facts` in the inventory (`cpus`, `memory_mib`, `gpus`) for machines that run
no agent yet or whose report is wrong; those values win over the report.
Templates see the result as `host.facts` (`corral.overlays.context`).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

FactName = Literal["cpus", "memory_mib", "gpus"]
FACT_NAMES: tuple[str, ...] = ("cpus", "memory_mib", "gpus")
Count = Annotated[int, Field(ge=0, le=1 << 40)]
Text = Annotated[str, Field(max_length=200)]
MAX_DEVICES = 256


class Fact(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GpuFact(Fact):
    """A GPU: a PCI display controller of a compute vendor (NVIDIA, AMD, Intel)."""

    pci: Text
    vendor: Text  # PCI vendor id, e.g. 0x10de
    device: Text  # PCI device id
    vendor_name: Text | None = None


class DiskFact(Fact):
    """A whole disk (no partitions, loop, RAM or device-mapper devices)."""

    name: Text
    size_bytes: Count
    model: Text | None = None
    rotational: bool | None = None


class NicFact(Fact):
    """A network interface backed by a device (no loopback, bridges or veths)."""

    name: Text
    mac: Text | None = None
    speed_mbps: int | None = None
    state: Text | None = None


class NodeFacts(Fact):
    """What the agent reports about its node's hardware."""

    cpus: Count | None = None
    cpu_model: Text | None = None
    memory_mib: Count | None = None
    gpus: list[GpuFact] = Field(default_factory=list, max_length=MAX_DEVICES)
    disks: list[DiskFact] = Field(default_factory=list, max_length=MAX_DEVICES)
    nics: list[NicFact] = Field(default_factory=list, max_length=MAX_DEVICES)
    kernel: Text | None = None
