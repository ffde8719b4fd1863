"""Sealed BMC passwords and hashed API tokens on each database backend (SQLite, PostgreSQL)."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from corral.app import Corral
from corral.inventory import ops
from corral.inventory.errors import Conflict, NotFound
from corral.store import schema, tokens
from corral.store.secretbox import PREFIX

PASSWORD = "s3cret-BMC"


def raw_power(app: Corral, name: str) -> object:
    with app.store.transaction() as conn:
        spec = conn.execute(sa.select(schema.nodes.c.spec).where(schema.nodes.c.name == name))
        return spec.scalar_one()["power"]


def test_a_bmc_password_is_sealed_in_the_row_and_clear_in_the_inventory(app: Corral) -> None:
    app.change(lambda inv: ops.add_network(inv, {"name": "prov", "cidr": "10.7.0.0/24"}))
    app.change(lambda inv: ops.add_nodes(inv, ["n1"], {"power": {"password": PASSWORD}}))
    stored = raw_power(app, "n1")
    assert PASSWORD not in json.dumps(stored)
    assert isinstance(stored, dict) and str(stored["password"]).startswith(PREFIX)
    password = app.read().nodes["n1"].power.password
    assert password is not None and password.get_secret_value() == PASSWORD
    app.change(lambda inv: ops.set_nodes(inv, ["n1"], {"power": {"username": "root"}}))
    assert PASSWORD not in json.dumps(raw_power(app, "n1"))


def test_tokens_are_found_by_their_secret_and_gone_once_revoked(app: Corral) -> None:
    with app.store.transaction() as conn:
        secret = tokens.create_token(conn, "ci", tokens.Role.OPERATOR, 1.0)
        with pytest.raises(Conflict):
            tokens.create_token(conn, "ci", tokens.Role.ADMIN, 2.0)
        with pytest.raises(Conflict, match="admin token"):
            tokens.create_token(conn, "admin", tokens.Role.ADMIN, 2.0)
    with app.store.transaction() as conn:
        assert tokens.find_token(conn, secret, 3.0) == ("ci", tokens.Role.OPERATOR)
        assert tokens.find_token(conn, secret + "x", 3.0) is None
        assert tokens.list_tokens(conn) == [
            {"name": "ci", "role": "operator", "created": 1.0, "last_used": 3.0}
        ]
        tokens.revoke_token(conn, "ci")
        with pytest.raises(NotFound):
            tokens.revoke_token(conn, "ci")
        assert tokens.find_token(conn, secret, 4.0) is None


def test_roles_nest() -> None:
    read_only, operator, admin = tokens.Role.READ_ONLY, tokens.Role.OPERATOR, tokens.Role.ADMIN
    assert admin.allows(operator) and admin.allows(read_only) and operator.allows(read_only)
    assert not read_only.allows(operator) and not operator.allows(admin)
