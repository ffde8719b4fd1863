"""The `corral` command: parse, call the application, print. No logic here.

Exit codes: 0 success, 1 a user error (one line saying what to fix), 2 usage.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys

import click

from corral import __version__
from corral.app import Corral
from corral.cli.context import CliContext
from corral.cli.output import err_console
from corral.client import ClientError
from corral.config import Settings
from corral.inventory.errors import InventoryError
from corral.store.db import StoreError

USER_ERRORS: tuple[type[Exception], ...] = (InventoryError, StoreError, ClientError)


class CorralGroup(click.Group):
    """Turns user errors into one line on stderr and exit code 1."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except USER_ERRORS as exc:
            err_console.print(f"[red]error:[/red] {exc}", highlight=False, markup=True)
            ctx.exit(1)


@click.group(cls=CorralGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="corral")
@click.option(
    "--server",
    envvar="CORRAL_SERVER",
    metavar="URL",
    help="Work against a remote corral server (token from --token, CORRAL_TOKEN "
    "or CORRAL_HOME/admin.token).",
)
@click.option("--token", envvar="CORRAL_TOKEN", help="Admin token for --server.")
@click.pass_context
def cli(ctx: click.Context, server: str | None, token: str | None) -> None:
    """corral: provision bare-metal clusters from one server.

    State lives under $CORRAL_HOME (default /var/lib/corral); set
    CORRAL_DATABASE_URL=postgresql://... to share a PostgreSQL database.
    """
    ctx.obj = CliContext(Corral(Settings.from_env()), server, token)


def register() -> None:
    """Add every `corral.cli` module's COMMANDS: one module per noun, no central list."""
    import corral.cli

    for info in pkgutil.iter_modules(corral.cli.__path__):
        if info.name.startswith("_"):
            continue
        if info.name.startswith("_"):  # __main__ runs the CLI when imported
            continue
        module = importlib.import_module(f"corral.cli.{info.name}")
        for command in getattr(module, "COMMANDS", ()):
            cli.add_command(command)


def main() -> None:
    register()
    sys.exit(cli.main(prog_name="corral", standalone_mode=True))
