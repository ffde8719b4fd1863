"""`corral profile add|list|show|set|delete`."""

from __future__ import annotations

from typing import Any

import click

from corral.cli.context import CliContext
from corral.cli.output import emit, output_option, success
from corral.cli.settings_options import settings_changes, settings_options
from corral.inventory import ops


@click.group()
def profile() -> None:
    """Profiles: named node settings that nodes stack in order."""


@profile.command("add")
@click.argument("name")
@click.option("--description", help="What the profile is for")
@settings_options
@click.pass_obj
def add(ctx: CliContext, /, name: str, description: str | None, **params: Any) -> None:
    """Create profile NAME."""
    data = {"name": name, "description": description, **settings_changes(params)}
    ctx.actions.add_profile(data)
    success(f"profile {name} created")


@profile.command("set")
@click.argument("name")
@click.option("--description", help="What the profile is for")
@settings_options
@click.pass_obj
def set_(ctx: CliContext, /, name: str, description: str | None, **params: Any) -> None:
    """Change settings of profile NAME."""

    changes = settings_changes(params)
    if description is not None:
        changes["description"] = description or None
    if not changes:
        raise click.UsageError("nothing to change: give at least one option")
    ctx.actions.set_profile(name, changes)
    success(f"profile {name} updated")


@profile.command("list")
@output_option
@click.pass_obj
def list_(ctx: CliContext, /, output: str) -> None:
    """List profiles."""
    inv = ctx.actions.inventory()
    profiles = inv.to_cluster().profiles
    users: dict[str, int] = {}
    for node in inv.nodes.values():
        for p in node.profiles:
            users[p] = users.get(p, 0) + 1
    emit(
        [p.model_dump(mode="json", exclude_defaults=True) for p in profiles],
        output,
        ("NAME", "IMAGE", "NETWORKS", "KERNEL ARGS", "POWER", "NODES"),
        lambda: [
            (
                p.name,
                p.image,
                ",".join(p.networks),
                " ".join(p.kernel_args),
                p.power.driver,
                users.get(p.name, 0),
            )
            for p in profiles
        ],
    )


@profile.command("show")
@click.argument("name")
@output_option
@click.pass_obj
def show(ctx: CliContext, /, name: str, output: str) -> None:
    """Show profile NAME."""
    prof = ops.get(ctx.actions.inventory().profiles, name, "profile")
    data = prof.model_dump(mode="json", exclude_defaults=True)
    emit(data, output, ("FIELD", "VALUE"), lambda: [(k, v) for k, v in data.items()])


@profile.command("delete")
@click.argument("name")
@click.pass_obj
def delete(ctx: CliContext, /, name: str) -> None:
    """Delete profile NAME (refused while nodes use it)."""
    ctx.actions.delete_profile(name)
    success(f"profile {name} deleted")


COMMANDS = [profile]
