"""`corral facts [NODES]`: the hardware each node's agent reported, as templates see it.

Values set in the inventory (`facts:` on a profile or node) win over the
report, as they do in overlay templates. Works with `--server`.
"""

from __future__ import annotations

import time
from typing import Any

import click

from corral.cli.context import CliContext
from corral.cli.output import emit, output_option
from corral.cli.status import duration
from corral.inventory.hostlists import expand

COLUMNS = ("NODE", "CPUS", "MEMORY MIB", "GPUS", "DISKS", "NICS", "REPORTED")


def row(facts: dict[str, Any]) -> tuple[Any, ...]:
    disks = ", ".join(f"{d['name']} {d['size_bytes'] // 10**9} GB" for d in facts["disks"])
    nics = ", ".join(f"{n['name']} {n.get('mac') or ''}".strip() for n in facts["nics"])
    when = facts["reported"]
    reported = "never" if when is None else duration(time.time() - when) + " ago"
    return (facts["node"], facts["cpus"], facts["memory_mib"], facts["gpus"], disks, nics, reported)


@click.command("facts")
@click.argument("nodes", required=False, metavar="[NODES]")
@output_option
@click.pass_obj
def facts(ctx: CliContext, /, nodes: str | None, output: str) -> None:
    """Hardware facts of NODES (a hostlist) or every node: CPUs, memory, GPUs, disks, NICs."""
    data = ctx.actions.facts(expand(nodes) if nodes else None)
    emit(data, output, COLUMNS, lambda: [row(f) for f in data])


COMMANDS = [facts]
