"""Initial schema: inventory, leases, discovery, status, events, images, switches.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "settings",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.JSON, nullable=False),
    )
    for table in ("networks", "profiles", "nodes", "switches"):
        op.create_table(
            table,
            sa.Column("name", sa.String(63), primary_key=True),
            sa.Column("spec", sa.JSON, nullable=False),
        )
    op.create_table(
        "interfaces",
        sa.Column(
            "node",
            sa.String(63),
            sa.ForeignKey("nodes.name", ondelete="CASCADE", name="fk_interfaces_node_nodes"),
            primary_key=True,
        ),
        sa.Column("network", sa.String(63), primary_key=True),
        sa.Column("mac", sa.String(17), nullable=True),
        sa.Column("ip", sa.String(15), nullable=True),
        sa.UniqueConstraint("mac", name="uq_interfaces_mac"),
        sa.UniqueConstraint("network", "ip", name="uq_interfaces_network_ip"),
    )
    op.create_table(
        "leases",
        sa.Column("mac", sa.String(17), primary_key=True),
        sa.Column("ip", sa.String(15), nullable=False),
        sa.Column("network", sa.String(63), nullable=True),
        sa.Column("expires", sa.Float, nullable=False),
        sa.Column("data", sa.JSON, nullable=False),
        sa.UniqueConstraint("ip", name="uq_leases_ip"),
    )
    op.create_table(
        "discovered",
        sa.Column("mac", sa.String(17), primary_key=True),
        sa.Column("first_seen", sa.Float, nullable=False),
        sa.Column("last_seen", sa.Float, nullable=False),
        sa.Column("data", sa.JSON, nullable=False),
    )
    op.create_table(
        "node_status",
        sa.Column("node", sa.String(63), primary_key=True),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("since", sa.Float, nullable=False),
        sa.Column("data", sa.JSON, nullable=False),
    )
    op.create_table(
        "events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("time", sa.Float, nullable=False),
        sa.Column("node", sa.String(63), nullable=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("data", sa.JSON, nullable=False),
    )
    op.create_index("ix_events_time", "events", ["time"])
    op.create_index("ix_events_node", "events", ["node"])
    op.create_table(
        "images",
        sa.Column("name", sa.String(63), primary_key=True),
        sa.Column("digest", sa.String(71), nullable=True),
        sa.Column("spec", sa.JSON, nullable=False),
    )


def downgrade() -> None:
    for table in (
        "images",
        "events",
        "node_status",
        "discovered",
        "leases",
        "interfaces",
        "switches",
        "nodes",
        "profiles",
        "networks",
        "settings",
    ):
        op.drop_table(table)
