"""`corral token create|list|revoke`: named API tokens with roles.

Roles: `admin` (everything), `operator` (reading and power),
`read-only` (reading). The secret is printed once, on stdout, when the token
is created; only its hash is kept, so a lost token is revoked and made again.
The admin token in CORRAL_HOME/admin.token stays an admin token.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import click

from corral.cli.context import CliContext
from corral.cli.output import emit, output_option, success
from corral.store.tokens import Role

ROLES = [r.value for r in Role]


@click.group()
def token() -> None:
    """API tokens with roles, for people and scripts that call the REST API."""


@token.command("create")
@click.argument("name")
@click.option(
    "--role",
    type=click.Choice(ROLES),
    required=True,
    help="admin: everything; operator: reading and power; read-only: reading",
)
@click.pass_obj
def create(ctx: CliContext, /, name: str, role: str) -> None:
    """Create token NAME; prints its secret once (keep it: only its hash is stored)."""
    secret = ctx.actions.create_token(name, role)
    click.echo(secret)
    success(f"token {name} created with role {role}: pass it as --token or CORRAL_TOKEN")


@token.command("list")
@output_option
@click.pass_obj
def list_(ctx: CliContext, /, output: str) -> None:
    """List tokens: name, role, when created and last used (never the secret)."""
    records = ctx.actions.tokens()

    def rows() -> list[tuple[Any, ...]]:
        return [
            (r["name"], r["role"], _when(r["created"]), _when(r.get("last_used"))) for r in records
        ]

    emit(records, output, ("NAME", "ROLE", "CREATED", "LAST USED"), rows)


@token.command("revoke")
@click.argument("name")
@click.pass_obj
def revoke(ctx: CliContext, /, name: str) -> None:
    """Revoke token NAME: calls with it are refused from now on."""
    ctx.actions.revoke_token(name)
    success(f"token {name} revoked")


def _when(ts: float | None) -> str:
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M") if ts else "-"


COMMANDS = [token]
