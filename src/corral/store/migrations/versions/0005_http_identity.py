"""Node identity: boot tokens, node credentials, enrollment codes (hashes only).

Revision ID: http_identity
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "http_identity"
down_revision = "dhcp_glue"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "boot_tokens",
        sa.Column("hash", sa.String(64), primary_key=True),
        sa.Column("node", sa.String(63), nullable=False),
        sa.Column("mac", sa.String(17), nullable=False),
        sa.Column("ip", sa.String(45), nullable=False),
        sa.Column("issued", sa.Float, nullable=False),
        sa.Column("expires", sa.Float, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("changed", sa.Float, nullable=True),
    )
    op.create_index("ix_boot_tokens_node", "boot_tokens", ["node"])
    op.create_table(
        "node_credentials",
        sa.Column("node", sa.String(63), primary_key=True),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("mac", sa.String(17), nullable=True),
        sa.Column("ip", sa.String(45), nullable=True),
        sa.Column("issued", sa.Float, nullable=False),
        sa.UniqueConstraint("hash", name="uq_node_credentials_hash"),
    )
    op.create_table(
        "enroll_codes",
        sa.Column("hash", sa.String(64), primary_key=True),
        sa.Column("created", sa.Float, nullable=False),
        sa.Column("expires", sa.Float, nullable=False),
        sa.Column("used", sa.Float, nullable=True),
        sa.Column("used_by", sa.String(17), nullable=True),
    )


def downgrade() -> None:
    for table in ("enroll_codes", "node_credentials", "boot_tokens"):
        op.drop_table(table)
