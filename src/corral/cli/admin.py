"""`corral admin ssh-key show|set|new`: the administrator's own SSH key pair.

Root on every node trusts its public half (the `authorized-keys` overlay, and
the rescue shell of service mode); `corral ssh` logs in with it. Nodes pick a
new key up at their next boot (or their agent's next overlay refresh).
"""

from __future__ import annotations

from pathlib import Path

import click

from corral.cli.context import CliContext
from corral.cli.output import emit, output_option, success
from corral.overlays.adminkey import admin_public_keys, new_admin_key, set_admin_key


@click.group()
def admin() -> None:
    """The administrator's credentials kept in CORRAL_HOME."""


@admin.group("ssh-key")
def ssh_key() -> None:
    """The admin's SSH key pair: root's key on every node, used by `corral ssh`."""


@ssh_key.command("show")
@output_option
@click.pass_obj
def show(ctx: CliContext, /, output: str) -> None:
    """Print the admin's public key and where the pair is kept."""
    paths = ctx.local().settings.paths
    keys = admin_public_keys(paths)
    if not keys:
        raise click.ClickException("no admin SSH key yet: run 'corral init'")
    data = {"private_key": str(paths.admin_ssh_key), "public_key": keys[0]}
    emit(data, output, ("FIELD", "VALUE"), lambda: list(data.items()), title="admin SSH key")


@ssh_key.command("set")
@click.argument("private_key", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_obj
def set_(ctx: CliContext, /, private_key: Path) -> None:
    """Use the key pair whose private key is PRIVATE_KEY (copied into CORRAL_HOME, 0600)."""
    public = set_admin_key(ctx.local().settings.paths, private_key)
    success(f"admin SSH key set: {public}")
    click.echo("nodes trust it from their next boot (or overlay refresh)")


@ssh_key.command("new")
@click.pass_obj
def new(ctx: CliContext, /) -> None:
    """Replace the admin's key pair with a freshly generated ed25519 pair."""
    public = new_admin_key(ctx.local().settings.paths)
    success(f"new admin SSH key: {public}")
    click.echo("nodes trust it from their next boot (or overlay refresh)")


COMMANDS = [admin]
