"""`corral ssh NODE [CMD]...`: log in to a node as root with the admin's key.

Host keys are checked strictly against the cluster's known_hosts, which is
rewritten from the nodes' overlay host keys before each login: the node
presents the key corral gave it (in its booted system, and in the service
mode rescue shell), so there is no prompt on first login, and a machine
presenting any other key is refused.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import click

from corral.app import Corral
from corral.cli.context import CliContext
from corral.inventory.index import Inventory
from corral.inventory.ops import get
from corral.overlays.adminkey import ssh_argv, write_known_hosts
from corral.overlays.render import renderer_for


def cluster_known_hosts(app: Corral, inv: Inventory) -> Path:
    """corral's known_hosts, rewritten from the nodes' overlay host keys."""
    paths = app.settings.paths
    return write_known_hosts(paths, renderer_for(paths).known_hosts(inv))


@click.command("ssh", context_settings={"ignore_unknown_options": True})
@click.argument("node")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@click.pass_obj
def ssh(ctx: CliContext, /, node: str, command: tuple[str, ...]) -> None:
    """Log in to NODE as root (or run COMMAND there) with the admin's SSH key."""
    paths = ctx.local().settings.paths
    if not paths.admin_ssh_key.is_file():
        raise click.ClickException("no admin SSH key: run 'corral init' first")
    inv = ctx.local().read()
    get(inv.nodes, node, "node")
    renderer = renderer_for(paths)
    address = renderer.context(inv, node).node.ip
    if address is None:
        raise click.ClickException(f"node {node} has no reserved address to log in to")
    known = cluster_known_hosts(ctx.local(), inv)
    argv = ssh_argv(str(paths.admin_ssh_key), str(known), address, command)
    raise SystemExit(subprocess.run(argv, check=False).returncode)


COMMANDS = [ssh]
