"""Database tables (SQLAlchemy Core). Records are stored as JSON `spec`
documents validated by the inventory models, with the columns that need
indexes or uniqueness (MAC, IP) pulled out beside them.

Changing a table means a new alembic revision in `migrations/versions/`.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData(
    naming_convention={
        "pk": "pk_%(table_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    }
)

settings = sa.Table(
    "settings",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.JSON, nullable=False),
)

networks = sa.Table(
    "networks",
    metadata,
    sa.Column("name", sa.String(63), primary_key=True),
    sa.Column("spec", sa.JSON, nullable=False),
)

profiles = sa.Table(
    "profiles",
    metadata,
    sa.Column("name", sa.String(63), primary_key=True),
    sa.Column("spec", sa.JSON, nullable=False),
)

nodes = sa.Table(
    "nodes",
    metadata,
    sa.Column("name", sa.String(63), primary_key=True),
    sa.Column("spec", sa.JSON, nullable=False),
)

interfaces = sa.Table(
    "interfaces",
    metadata,
    sa.Column(
        "node", sa.String(63), sa.ForeignKey("nodes.name", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("network", sa.String(63), primary_key=True),
    sa.Column("mac", sa.String(17), nullable=True, unique=True),
    sa.Column("ip", sa.String(15), nullable=True),
    sa.UniqueConstraint("network", "ip"),
)

leases = sa.Table(
    "leases",
    metadata,
    sa.Column("mac", sa.String(17), primary_key=True),
    sa.Column("ip", sa.String(15), nullable=False, unique=True),
    sa.Column("network", sa.String(63), nullable=True),
    sa.Column("expires", sa.Float, nullable=False),
    sa.Column("data", sa.JSON, nullable=False),
)

discovered = sa.Table(
    "discovered",
    metadata,
    sa.Column("mac", sa.String(17), primary_key=True),
    sa.Column("first_seen", sa.Float, nullable=False),
    sa.Column("last_seen", sa.Float, nullable=False),
    sa.Column("data", sa.JSON, nullable=False),
)

node_status = sa.Table(
    "node_status",
    metadata,
    sa.Column("node", sa.String(63), primary_key=True),
    sa.Column("state", sa.String(32), nullable=False),
    sa.Column("since", sa.Float, nullable=False),
    sa.Column("data", sa.JSON, nullable=False),
)

events = sa.Table(
    "events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("time", sa.Float, nullable=False, index=True),
    sa.Column("node", sa.String(63), nullable=True, index=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("data", sa.JSON, nullable=False),
)

images = sa.Table(
    "images",
    metadata,
    sa.Column("name", sa.String(63), primary_key=True),
    sa.Column("digest", sa.String(71), nullable=True),
    sa.Column("spec", sa.JSON, nullable=False),
)

switches = sa.Table(
    "switches",
    metadata,
    sa.Column("name", sa.String(63), primary_key=True),
    sa.Column("spec", sa.JSON, nullable=False),
)

api_tokens = sa.Table(
    "api_tokens",
    metadata,
    sa.Column("name", sa.String(63), primary_key=True),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False, unique=True),
    sa.Column("created", sa.Float, nullable=False),
    sa.Column("last_used", sa.Float, nullable=True),
)

# Node identity (see docs/security.md): only sha256 hashes of the secrets are kept.
boot_tokens = sa.Table(
    "boot_tokens",
    metadata,
    sa.Column("hash", sa.String(64), primary_key=True),
    sa.Column("node", sa.String(63), nullable=False, index=True),
    sa.Column("mac", sa.String(17), nullable=False),
    sa.Column("ip", sa.String(45), nullable=False),
    sa.Column("issued", sa.Float, nullable=False),
    sa.Column("expires", sa.Float, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # live | spent | superseded
    sa.Column("changed", sa.Float, nullable=True),
)

node_credentials = sa.Table(
    "node_credentials",
    metadata,
    sa.Column("node", sa.String(63), primary_key=True),
    sa.Column("hash", sa.String(64), nullable=False, unique=True),
    sa.Column("mac", sa.String(17), nullable=True),
    sa.Column("ip", sa.String(45), nullable=True),
    sa.Column("issued", sa.Float, nullable=False),
)

enroll_codes = sa.Table(
    "enroll_codes",
    metadata,
    sa.Column("hash", sa.String(64), primary_key=True),
    sa.Column("created", sa.Float, nullable=False),
    sa.Column("expires", sa.Float, nullable=False),
    sa.Column("used", sa.Float, nullable=True),
    sa.Column("used_by", sa.String(17), nullable=True),
)

# --- the node agent (migration 0002_node-agent) -------------------------------------------

# No foreign keys to nodes: saving a changed node deletes and re-inserts its row,
# which would cascade away its facts and runs (node_status has none for the same reason).
node_facts = sa.Table(
    "node_facts",
    metadata,
    sa.Column("node", sa.String(63), primary_key=True),
    sa.Column("reported", sa.Float, nullable=False),
    sa.Column("facts", sa.JSON, nullable=False),
)

exec_jobs = sa.Table(
    "exec_jobs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("created", sa.Float, nullable=False, index=True),
    sa.Column("command", sa.Text, nullable=False),
    sa.Column("timeout", sa.Float, nullable=False),
)

exec_runs = sa.Table(
    "exec_runs",
    metadata,
    sa.Column(
        "job", sa.Integer, sa.ForeignKey("exec_jobs.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("node", sa.String(63), primary_key=True),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("sent", sa.Float, nullable=True),
    sa.Column("finished", sa.Float, nullable=True),
    sa.Column("exit_code", sa.Integer, nullable=True),
    sa.Column("result", sa.JSON, nullable=False),
    sa.Index("ix_exec_runs_node_state", "node", "state"),
)

# --- several servers (migration 0007_failover) ---------------------------------------------

# One row per running `corral serve`, keyed by its plain-HTTP URL, its `seen` time renewed
# by a heartbeat: what a server tells nodes about its peers, and where it fetches artifacts.
servers = sa.Table(
    "servers",
    metadata,
    sa.Column("url", sa.String(255), primary_key=True),
    sa.Column("api_url", sa.String(255), nullable=False),
    sa.Column("address", sa.String(64), nullable=False),
    sa.Column("bt_port", sa.Integer, nullable=True),
    sa.Column("started", sa.Float, nullable=False),
    sa.Column("seen", sa.Float, nullable=False),
)
