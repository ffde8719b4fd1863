"""`corral profile add|list|show|set|delete`."""

from __future__ import annotations

from typing import Any

import click

from corral.app import Corral
from corral.cli.output import emit, output_option, success
from corral.cli.settings_options import settings_changes, settings_options
from corral.inventory import ops
from corral.inventory.models import Profile


@click.group()
def profile() -> None:
    """Profiles: named node settings that nodes stack in order."""


@profile.command("add")
@click.argument("name")
@click.option("--description", help="What the profile is for")
@settings_options
@click.pass_obj
def add(app: Corral, /, name: str, description: str | None, **params: Any) -> None:
    """Create profile NAME."""
    data = {"name": name, "description": description, **settings_changes(params, {})}
    app.change(lambda inv: ops.add_profile(inv, data))
    success(f"profile {name} created")


@profile.command("set")
@click.argument("name")
@click.option("--description", help="What the profile is for")
@settings_options
@click.pass_obj
def set_(app: Corral, /, name: str, description: str | None, **params: Any) -> None:
    """Change settings of profile NAME."""

    def change(inv: Any) -> Profile:
        current = ops.get(inv.profiles, name, "profile")
        changes = settings_changes(params, current.tags)
        if description is not None:
            changes["description"] = description or None
        if not changes:
            raise click.UsageError("nothing to change: give at least one option")
        return ops.set_profile(inv, name, changes)

    app.change(change)
    success(f"profile {name} updated")


@profile.command("list")
@output_option
@click.pass_obj
def list_(app: Corral, /, output: str) -> None:
    """List profiles."""
    inv = app.read()
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
def show(app: Corral, /, name: str, output: str) -> None:
    """Show profile NAME."""
    prof = ops.get(app.read().profiles, name, "profile")
    data = prof.model_dump(mode="json", exclude_defaults=True)
    emit(data, output, ("FIELD", "VALUE"), lambda: [(k, v) for k, v in data.items()])


@profile.command("delete")
@click.argument("name")
@click.pass_obj
def delete(app: Corral, /, name: str) -> None:
    """Delete profile NAME (refused while nodes use it)."""
    app.change(lambda inv: ops.delete_profile(inv, name))
    success(f"profile {name} deleted")


COMMANDS = [profile]
