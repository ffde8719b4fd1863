"""The alembic revisions (`versions/`) and the newest one's name.

HEAD_REVISION lives here rather than in `store.db` so that a reader that does
not load SQLAlchemy (`store.nodelist`) can tell a database it understands.
A new revision sets it (CONTRIBUTING.md, "Database changes").
"""

HEAD_REVISION = "failover"
