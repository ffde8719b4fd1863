"""Node specs lose `switch`/`switch_port` (nothing read them); the switch map keeps the port.

A node that named a switch that exists and a port that switch has not mapped
yet gets that port in the switch's map (what `corral switch map` would write),
so the information is kept where discovery reads it. The keys are then removed
from every node spec, which the Node model now refuses.

Revision ID: arch_layers
Revises: 0001
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from alembic import op

revision = "arch_layers"  # alembic refuses "-" in an identifier (the branch is arch-layers)
down_revision = "0001"
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")
specs = sa.MetaData()
nodes = sa.Table("nodes", specs, sa.Column("name", sa.String(63)), sa.Column("spec", sa.JSON))
switches = sa.Table("switches", specs, sa.Column("name", sa.String(63)), sa.Column("spec", sa.JSON))


def upgrade() -> None:
    conn = op.get_bind()
    maps = {name: dict(spec) for name, spec in conn.execute(sa.select(switches))}
    changed: set[str] = set()
    for name, stored in conn.execute(sa.select(nodes)).all():
        if "switch" not in stored and "switch_port" not in stored:
            continue
        spec = dict(stored)
        switch, port = spec.pop("switch", None), spec.pop("switch_port", None)
        conn.execute(sa.update(nodes).where(nodes.c.name == name).values(spec=spec))
        ports = maps[switch].setdefault("ports", {}) if switch in maps else None
        if ports is not None and port and ports.get(str(port), name) == name:
            ports[str(port)] = name
            changed.add(switch)
        elif switch or port:
            log.warning(
                "node %s: dropped switch %s port %s (no such switch, or the port is mapped); "
                "map it with: corral switch map SWITCH PORT %s",
                name,
                switch,
                port,
                name,
            )
    for switch in sorted(changed):
        conn.execute(sa.update(switches).where(switches.c.name == switch).values(spec=maps[switch]))


def downgrade() -> None:
    """Nothing to restore: the keys were optional and the switch map stays valid."""
