"""`corral events`: what happened to nodes, filtered by node, kind and time.

Filters run on the server (or the local database), so `--node n0042` in a
million events reads one node's rows. `--follow` keeps printing new events
(one poll a second) until Ctrl-C. Works on the local database and with
`--server`.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from datetime import datetime

import click

from corral.cli.context import CliContext
from corral.cli.output import FORMATS, console, emit, emit_data
from corral.inventory.hostlists import expand
from corral.inventory.types import Data

COLUMNS = ("ID", "TIME", "NODE", "KIND", "DETAILS")
FOLLOW_EVERY = 1.0  # seconds between polls with --follow
PAGE = 1000
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
AGO = re.compile(r"^(\d+(?:\.\d+)?)([smhdw])$")


def parse_since(text: str, now: float) -> float:
    """`10m`, `2h`, `3d` ago, or an ISO date/time (local time unless it names a zone)."""
    match = AGO.match(text.strip())
    if match:
        return now - float(match.group(1)) * UNITS[match.group(2)]
    try:
        return datetime.fromisoformat(text.strip()).timestamp()
    except ValueError:
        raise click.BadParameter(
            f"{text!r} is neither a duration (30s, 10m, 2h, 3d, 1w) nor a date "
            "(2026-12-03 or 2026-12-03T10:15)",
            param_hint="--since",
        ) from None


def details(event: Data) -> str:
    data = dict(event.get("data") or {})
    if event["kind"] == "state" and "state" in data:
        head = f"{data.pop('from', '?')} -> {data.pop('state')}"
        rest = " ".join(f"{k}={v}" for k, v in data.items())
        return f"{head} {rest}".strip()
    return " ".join(f"{k}={v}" for k, v in data.items())


def cells(event: Data) -> list[str]:
    when = datetime.fromtimestamp(event["time"]).strftime("%Y-%m-%d %H:%M:%S")
    return [str(event["id"]), when, event.get("node") or "", event["kind"], details(event)]


@click.command("events")
@click.option("--node", "nodes", metavar="NODES", help="Only these nodes (a hostlist: n[01-16]).")
@click.option(
    "--kind", "kinds", multiple=True, help="Only events of this kind (state, ...); repeatable."
)
@click.option("--since", metavar="WHEN", help="Only events since WHEN: 10m, 2h, 3d or a date.")
@click.option(
    "--limit",
    type=click.IntRange(1, 100_000),
    default=100,
    show_default=True,
    help="Print at most the last LIMIT matching events.",
)
@click.option("-f", "--follow", is_flag=True, help="Keep printing new events until Ctrl-C.")
@click.option(
    "-o",
    "--output",
    type=click.Choice(FORMATS),
    default="table",
    show_default=True,
    help="Output format (with --follow, json prints one event per line).",
)
@click.pass_obj
def events(
    ctx: CliContext,
    /,
    nodes: str | None,
    kinds: tuple[str, ...],
    since: str | None,
    limit: int,
    follow: bool,
    output: str,
) -> None:
    """Events of nodes (state changes, alarms) by node, kind and time, oldest first.

    Without --since, the last LIMIT matching events; with it, the last LIMIT
    since then.
    """
    names = expand(nodes) if nodes else None
    start = parse_since(since, time.time()) if since else None
    kind_list = list(kinds) or None
    found = ctx.actions.find_events(0, limit, names, kind_list, start, newest=True)
    if not follow:
        emit(found, output, COLUMNS, lambda: [cells(e) for e in found])
        return
    after = found[-1]["id"] if found else _last_id(ctx)
    for event in found:
        _print_one(event, output)
    with contextlib.suppress(KeyboardInterrupt):
        while True:
            time.sleep(FOLLOW_EVERY)
            page = ctx.actions.find_events(after, PAGE, names, kind_list, start)
            for event in page:
                _print_one(event, output)
            if page:
                after = page[-1]["id"]


def _last_id(ctx: CliContext) -> int:
    """Where following starts when nothing matched yet: after the newest event of all."""
    newest = ctx.actions.find_events(0, 1, newest=True)
    return int(newest[-1]["id"]) if newest else 0


def _print_one(event: Data, output: str) -> None:
    if output == "table":
        console.print("  ".join(cells(event)), highlight=False, markup=False)
    elif output == "json":
        click.echo(json.dumps(event, separators=(",", ":"), default=str))
    else:
        click.echo("---")
        emit_data(event, output)


COMMANDS = [events]
