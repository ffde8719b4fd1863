"""Several servers, one cluster: each `corral serve` on the database says where it is.

Revision ID: failover
Revises: node_agent
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "failover"
down_revision = "node_agent"  # the integrator re-chains the 0007 migrations
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "servers",
        sa.Column("url", sa.String(255), primary_key=True),
        sa.Column("api_url", sa.String(255), nullable=False),
        sa.Column("address", sa.String(64), nullable=False),
        sa.Column("bt_port", sa.Integer, nullable=True),
        sa.Column("started", sa.Float, nullable=False),
        sa.Column("seen", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("servers")
