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
