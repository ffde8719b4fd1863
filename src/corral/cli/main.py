"""The `corral` command: parse, call the application, print. No logic here.

Exit codes: 0 success, 1 a user error (one line saying what to fix), 2 usage.

Start-up is lazy: `corral --help` and completion read the table below and
import no command module, no database library and no models; a command's
module is imported when that command runs. `tests/cli/test_lazy_cli.py`
checks the table against every module's `COMMANDS`, so a command missing
from it (or a help line that drifted) fails the suite.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import TextIO

import click

from corral import __version__

# command name -> (module under corral.cli, the command's one-line help)
LAZY_COMMANDS: dict[str, tuple[str, str]] = {
    "admin": ("admin", "The administrator's credentials kept in CORRAL_HOME."),
    "ansible-inventory": (
        "ansible",
        "Print the inventory for Ansible: groups by profile and tag, no secrets.",
    ),
    "apply": ("apply", "Create and update records to match FILE, in one transaction."),
    "board": (
        "board",
        "Board-only actions: USB mode, flashing a module, mass storage, UART.",
    ),
    "completion": ("completion", "Print the shell completion script for bash, zsh or fish."),
    "console": (
        "console",
        "Attach to NODE's serial console (IPMI SOL, Redfish, Turing Pi serial, QEMU).",
    ),
    "events": (
        "events",
        "Events of nodes (state changes, alarms) by node, kind and time, oldest first.",
    ),
    "exec": (
        "execute",
        "Run CMD on NODES (a hostlist such as n[001-064]) through the node agents.",
    ),
    "export": (
        "apply",
        "Write the whole inventory in the format `corral apply` reads (no secrets).",
    ),
    "facts": (
        "facts",
        "Hardware facts of NODES (a hostlist) or every node: CPUs, memory, GPUs, disks, NICs.",
    ),
    "image": ("image", "OS images: import, build, grab, shell into, pack for network boot."),
    "init": ("init_home", "Prepare CORRAL_HOME (idempotent: running it again changes nothing)."),
    "lab": (
        "lab",
        "A virtual lab: a provisioning network, corral serve and QEMU nodes that netboot.",
    ),
    "network": (
        "network",
        "Networks that nodes attach to (addresses, gateway, DNS, discovery range).",
    ),
    "node": ("node", "Nodes: machines, named singly or by ranges like n[001-128]."),
    "overlay": (
        "overlay",
        "Overlays: files rendered per node (hostname, hosts, network, ssh keys, ...).",
    ),
    "power": (
        "power",
        "Power control through each node's driver.",
    ),
    "profile": ("profile", "Profiles: named node settings that nodes stack in order."),
    "rpi": ("rpi", "Raspberry Pi 4/5 network boot (docs/boards.md)."),
    "serve": (
        "serve",
        "Run DHCP, TFTP, HTTP (API, boot scripts, artifacts, tracker), DNS and the image seeder.",
    ),
    "ssh": ("ssh", "Log in to NODE as root (or run COMMAND there) with the admin's SSH key."),
    "status": (
        "status",
        "Node states: NODES (a hostlist such as n[001-064]) or all nodes, live until Ctrl-C.",
    ),
    "switch": ("switch", "Switches: port maps for naming nodes by where they are cabled."),
    "token": (
        "token",
        "API tokens with roles, for people and scripts that call the REST API.",
    ),
}


class CorralGroup(click.Group):
    """Loads each command's module on demand; turns user errors into one line and exit 1."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(LAZY_COMMANDS) | set(self.commands))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self.commands:
            return self.commands[name]
        entry = LAZY_COMMANDS.get(name)
        if entry is None:
            return None
        module = importlib.import_module(f"corral.cli.{entry[0]}")
        for command in getattr(module, "COMMANDS", ()):
            if command.name == name:
                return command  # type: ignore[no-any-return]
        return None

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list from the table: `--help` imports no command module."""
        rows = [(n, LAZY_COMMANDS[n][1]) for n in self.list_commands(ctx) if n in LAZY_COMMANDS]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def invoke(self, ctx: click.Context) -> object:
        # light modules only: `node list --server` imports no database library or models
        from corral.client import ClientError
        from corral.inventory.errors import InventoryError
        from corral.store.errors import StoreError

        try:
            return super().invoke(ctx)
        except (InventoryError, StoreError, ClientError) as exc:
            from corral.cli.output import err_console

            err_console.print(f"[red]error:[/red] {exc}", highlight=False, markup=True)
            ctx.exit(1)


@click.group(cls=CorralGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="corral")
@click.option(
    "--server",
    envvar="CORRAL_SERVER",
    metavar="URL",
    help="Drive the corral server at URL (token from CORRAL_TOKEN, --token-file, --token "
    "or CORRAL_HOME/admin.token). Commands that work on this machine's files refuse it.",
)
@click.option(
    "--token",
    envvar="CORRAL_TOKEN",
    help="API token for --server. On the command line ps shows it to every local user: "
    "prefer the CORRAL_TOKEN variable or --token-file.",
)
@click.option(
    "--token-file",
    type=click.File("r"),
    envvar="CORRAL_TOKEN_FILE",
    help="Read the API token for --server from this file ('-': standard input).",
)
@click.option(
    "--ca",
    type=click.Path(path_type=Path, dir_okay=False),
    envvar="CORRAL_CA",
    help="Trust https:// --server certificates signed by this CA certificate "
    "(default CORRAL_HOME/pki/ca.pem when it exists, else the system's trust store).",
)
@click.pass_context
def cli(
    ctx: click.Context,
    server: str | None,
    token: str | None,
    token_file: TextIO | None,
    ca: Path | None,
) -> None:
    """corral: provision bare-metal clusters from one server.

    State lives under $CORRAL_HOME (default /var/lib/corral); set
    CORRAL_DATABASE_URL=postgresql://... to share a PostgreSQL database.
    """
    from corral.cli.context import CliContext
    from corral.config import Settings

    if token_file is not None:
        token = token_file.readline(1024).strip() or token
    ctx.obj = CliContext(Settings.from_env(), server, token, ca)


def register() -> None:
    """Kept for callers that registered every command eagerly; loading is lazy now."""


def main() -> None:
    sys.exit(cli.main(prog_name="corral", standalone_mode=True))
