"""Bound network lease times to what DHCP carries (data only, no schema change).

Before this revision `lease_time` had no upper bound, and a network saved
with e.g. 99999999999 made every DHCP reply fail. The inventory model now
refuses more than 2**31-1 s; stored values above are lowered to it, so the
inventory still loads.

Revision ID: dhcp_glue
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "dhcp_glue"
down_revision = "server_api"
branch_labels = None
depends_on = None

LEASE_TIME_MAX = 2**31 - 1  # corral.inventory.models.LEASE_TIME_MAX when this was written


def upgrade() -> None:
    networks = sa.table("networks", sa.column("name", sa.String), sa.column("spec", sa.JSON))
    conn = op.get_bind()
    for name, spec in conn.execute(sa.select(networks.c.name, networks.c.spec)).all():
        lease_time = spec.get("lease_time")
        if isinstance(lease_time, int) and lease_time > LEASE_TIME_MAX:
            fixed = {**spec, "lease_time": LEASE_TIME_MAX}
            conn.execute(networks.update().where(networks.c.name == name).values(spec=fixed))


def downgrade() -> None:
    """Nothing to undo: the lowered values were unusable."""
