"""`corral apply -f FILE` and `corral export`: the declarative cluster file."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from corral.cli.context import CliContext
from corral.cli.output import success
from corral.inventory.errors import InventoryError
from corral.inventory.fileformat import dump_cluster, load_cluster


@click.command("apply")
@click.option(
    "-f", "--file", "path", required=True, help="Cluster file (YAML or JSON; - for stdin)"
)
@click.option("--prune", is_flag=True, help="Delete networks, profiles and nodes the file lacks")
@click.option("--dry-run", is_flag=True, help="Print the changes without making them")
@click.pass_obj
def apply(ctx: CliContext, /, path: str, prune: bool, dry_run: bool) -> None:
    """Create and update records to match FILE, in one transaction."""
    if path == "-":
        text, name = sys.stdin.read(), "<stdin>"
    else:
        try:
            text, name = Path(path).read_text(), path
        except OSError as exc:
            raise InventoryError(f"cannot read {path}: {exc.strerror}") from None
    desired = load_cluster(text, name)
    plan = ctx.actions.apply(desired, prune=prune, dry_run=dry_run)
    lines = [str(change) for change in plan.changes]
    if plan.settings_changed:
        lines.append("~ cluster settings")
    if lines:  # one write: a rich print per line took a second for 10,000 nodes
        click.echo("\n".join(lines))
    counts = plan.summary()
    verb = "would be" if dry_run else "were"
    summary = ", ".join(f"{n} {action}d" for action, n in counts.items())
    if plan.empty:
        success("no changes: the inventory already matches the file")
    else:
        success(f"{summary} ({'dry run, nothing' if dry_run else 'all'} {verb} applied)")


@click.command("export")
@click.option(
    "-o",
    "--output",
    type=click.Choice(["yaml", "json"]),
    default="yaml",
    show_default=True,
    help="Output format.",
)
@click.pass_obj
def export(ctx: CliContext, /, output: str) -> None:
    """Write the whole inventory in the format `corral apply` reads (no secrets)."""
    click.echo(
        dump_cluster(ctx.actions.inventory().to_cluster(), "json" if output == "json" else "yaml"),
        nl=False,
    )


COMMANDS = [apply, export]
