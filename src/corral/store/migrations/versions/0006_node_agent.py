"""The node agent: facts the agent reports, and `corral exec` jobs with one run per node.

Revision ID: node_agent
Revises: http_identity
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "node_agent"
down_revision = "http_identity"  # the integrator re-chains the 0002 migrations
branch_labels = None
depends_on = None


def upgrade() -> None:
    # no foreign keys to nodes: saving a changed node deletes and re-inserts its row
    op.create_table(
        "node_facts",
        sa.Column("node", sa.String(63), primary_key=True),
        sa.Column("reported", sa.Float, nullable=False),
        sa.Column("facts", sa.JSON, nullable=False),
    )
    op.create_table(
        "exec_jobs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("created", sa.Float, nullable=False),
        sa.Column("command", sa.Text, nullable=False),
        sa.Column("timeout", sa.Float, nullable=False),
    )
    op.create_index("ix_exec_jobs_created", "exec_jobs", ["created"])
    op.create_table(
        "exec_runs",
        sa.Column(
            "job",
            sa.Integer,
            sa.ForeignKey("exec_jobs.id", ondelete="CASCADE", name="fk_exec_runs_job_exec_jobs"),
            primary_key=True,
        ),
        sa.Column("node", sa.String(63), primary_key=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("sent", sa.Float, nullable=True),
        sa.Column("finished", sa.Float, nullable=True),
        sa.Column("exit_code", sa.Integer, nullable=True),
        sa.Column("result", sa.JSON, nullable=False),
    )
    op.create_index("ix_exec_runs_node_state", "exec_runs", ["node", "state"])


def downgrade() -> None:
    op.drop_table("exec_runs")
    op.drop_table("exec_jobs")
    op.drop_table("node_facts")
