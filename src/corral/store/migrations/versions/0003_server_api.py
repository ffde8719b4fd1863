"""Named API tokens with roles, stored as hashes; BMC passwords sealed at rest.

Revision ID: server_api
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op

from corral.store.inventory import seal_stored_secrets

revision = "server_api"  # alembic allows no "-" in an identifier
down_revision = "arch_layers"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_tokens",
        sa.Column("name", sa.String(63), primary_key=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("created", sa.Float, nullable=False),
        sa.Column("last_used", sa.Float, nullable=True),
        sa.UniqueConstraint("hash", name="uq_api_tokens_hash"),
    )
    box = context.config.attributes.get("secrets")
    if box is not None:  # corral's own upgrade passes its SecretBox
        seal_stored_secrets(op.get_bind(), box)


def downgrade() -> None:
    op.drop_table("api_tokens")
