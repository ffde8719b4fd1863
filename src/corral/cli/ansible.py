"""`corral ansible-inventory`: Ansible's dynamic-inventory script protocol."""

from __future__ import annotations

import json

import click

from corral.cli.context import CliContext
from corral.inventory.ansible import host_vars, inventory_list
from corral.inventory.errors import NotFound


@click.command("ansible-inventory")
@click.option("--list", "list_all", is_flag=True, help="Every group and host (the default)")
@click.option("--host", metavar="NODE", help="One node's variables")
@click.pass_obj
def ansible_inventory(ctx: CliContext, /, list_all: bool, host: str | None) -> None:
    """Print the inventory for Ansible: groups by profile and tag, no secrets.

    Ansible runs an inventory script with --list or --host; a two-line script
    makes corral one:

    \b
        #!/bin/sh
        exec corral ansible-inventory "$@"

    then: ansible -i ./corral-inventory compute -m ping
    """
    if list_all and host:
        raise click.UsageError("give --list or --host NODE, not both")
    inv = ctx.actions.inventory()
    if host is None:
        click.echo(json.dumps(inventory_list(inv), indent=1, sort_keys=True))
        return
    if host not in inv.nodes:
        raise NotFound(f"no such node: {host}")
    click.echo(json.dumps(host_vars(inv, host), indent=1, sort_keys=True))


COMMANDS = [ansible_inventory]
