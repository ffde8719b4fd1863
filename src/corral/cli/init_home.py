"""`corral init`: create CORRAL_HOME, the database, the admin token, the TFTP root."""

from __future__ import annotations

import click

from corral.boot.ipxe_binaries import install_ipxe_binaries
from corral.cli.context import CliContext
from corral.cli.output import success


@click.command("init")
@click.pass_obj
def init(ctx: CliContext) -> None:
    """Prepare CORRAL_HOME (idempotent: running it again changes nothing)."""
    app = ctx.app
    paths = app.settings.paths
    app.store.migrate()
    app.admin_token(create=True)
    installed = install_ipxe_binaries(paths.tftp_root)
    success(f"corral home ready at {paths.home} (database {app.store.safe_url})")
    click.echo(f"admin token: {paths.token} (mode 0600)")
    if installed:
        click.echo(f"iPXE binaries in {paths.tftp_root}: {', '.join(installed)}")
    else:
        click.echo("iPXE binaries not found: apt-get install ipxe, then run corral init again")


COMMANDS = [init]
