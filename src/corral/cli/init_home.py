"""`corral init`: create CORRAL_HOME, the database, the admin token and SSH key, the key that
seals secrets in the database, the cluster CA and signing keys (corral.pki), the TFTP root."""

from __future__ import annotations

from pathlib import Path

import click

from corral import pki
from corral.cli.context import CliContext
from corral.cli.output import success
from corral.overlays.adminkey import ensure_admin_key
from corral.services.ipxe_files import install_ipxe_binaries


@click.command("init")
@click.option(
    "--ssh-key",
    "ssh_key",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The admin's SSH private key (its pair is copied into CORRAL_HOME); "
    "default: keep the one there, or generate an ed25519 pair",
)
@click.pass_obj
def init(ctx: CliContext, ssh_key: Path | None) -> None:
    """Prepare CORRAL_HOME (idempotent: running it again changes nothing)."""
    app = ctx.local()
    paths = app.settings.paths
    app.store.migrate()
    app.admin_token(create=True)
    made = pki.ensure(pki.Pki(paths.pki), app.read().settings.name)  # keys, never printed
    public, changed = ensure_admin_key(paths, ssh_key)
    installed = install_ipxe_binaries(paths.tftp_root)
    success(f"corral home ready at {paths.home} (database {app.store.safe_url})")
    click.echo(f"admin token: {paths.token} (mode 0600)")
    key = app.store.secrets.ensure_key() if app.store.secrets else None
    if key is not None:
        click.echo(f"secret key: {key} (mode 0600; back it up apart from the database)")
    state = "installed" if changed else "kept"
    click.echo(f"admin SSH key: {paths.admin_ssh_key} ({state}; root on every node trusts it)")
    click.echo(f"  {public}")
    keys = pki.Pki(paths.pki)
    if made:
        click.echo(f"cluster CA: {keys.ca_cert} (give it to clients: --ca / CORRAL_CA)")
    click.echo(f"ssh: one line for ~/.ssh/known_hosts: {pki.known_hosts_line(keys)}")
    if installed:
        click.echo(f"iPXE binaries in {paths.tftp_root}: {', '.join(installed)}")
    else:
        click.echo("iPXE binaries not found: apt-get install ipxe, then run corral init again")


COMMANDS = [init]
