"""`corral status`: where every node is, live, or once for scripts.

The table refreshes until Ctrl-C; `--once` or `-o json|yaml` print one
snapshot; `--watch-until STATE` waits for the nodes to reach STATE (or pass
it, on the way to `ready`) and exits 0, or 1 when one fails, or 3 on
timeout: what the demo and the end-to-end tests wait on. `--graph` prints
the state machine (`corral.states`) as Graphviz dot. Works on the local
database and with `--server`.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence

import click
from rich.live import Live
from rich.table import Table
from rich.text import Text

from corral import states
from corral.actions import Actions
from corral.cli.context import CliContext
from corral.cli.output import FORMATS, console, emit_data, err_console
from corral.inventory.hostlists import expand
from corral.inventory.types import Data

COLUMNS = ("NODE", "STATE", "IMAGE", "IN STATE", "IP", "PEERS", "PROGRESS", "LAST ERROR")
COLOURS = {
    states.FAILED: "red",
    states.LOST: "yellow",
    states.BOOTED: "green",
    states.READY: "bold green",
}
EXIT_FAILED, EXIT_TIMEOUT = 1, 3


def duration(seconds: float) -> str:
    """3s, 4m05s, 2h03m, 3d04h."""
    s = max(int(seconds), 0)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def progress(row: Data) -> str:
    done, total = row.get("bytes"), row.get("total")
    if done is None:
        return ""
    if total:
        return f"{100 * done // total}% {size(total)}"
    return size(done)


def cells(row: Data, now: float) -> list[str]:
    since = row.get("since") or 0.0
    return [
        row["node"],
        row["state"],
        row.get("image") or "",
        duration(now - since) if since else "",
        row.get("ip") or "",
        "" if row.get("peers") is None else str(row["peers"]),
        progress(row),
        row.get("error") or (row.get("message") or "" if row["state"] == states.LOST else ""),
    ]


def table(rows: Sequence[Data], now: float, title: str | None = None) -> Table:
    out = Table(title=title, show_edge=False, header_style="bold")
    for col in COLUMNS:
        out.add_column(col, overflow="fold", no_wrap=col != "LAST ERROR")
    for row in rows:
        values = cells(row, now)
        state = Text(values[1], style=COLOURS.get(row["state"], "yellow"))
        out.add_row(values[0], state, *values[2:])
    return out


def summary(rows: Sequence[Data]) -> str:
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["state"]] = counts.get(row["state"], 0) + 1
    parts = [f"{counts[s]} {s}" for s in states.STATES if s in counts]
    return f"{len(rows)} nodes: " + ", ".join(parts) if rows else "no nodes"


def show(rows: Sequence[Data], output: str) -> None:
    if output == "table":
        console.print(table(rows, time.time()))
    else:
        emit_data(list(rows), output)


def live(actions: Actions, names: list[str] | None, interval: float) -> None:
    """Refresh the table every `interval` seconds until Ctrl-C."""
    try:
        with Live(console=console, auto_refresh=False, transient=False) as screen:
            while True:
                rows = actions.status(names)
                screen.update(table(rows, time.time(), summary(rows)), refresh=True)
                time.sleep(interval)
    except KeyboardInterrupt:
        pass


def report_changes(rows: Sequence[Data], last: dict[str, str]) -> None:
    """Without a terminal: one line on stderr per state change."""
    for row in rows:
        if last.get(row["node"]) != row["state"]:
            extra = (
                f" ({row['error']})" if row["state"] == states.FAILED and row.get("error") else ""
            )
            err_console.print(f"{row['node']}: {row['state']}{extra}", highlight=False)
            last[row["node"]] = row["state"]


def check(rows: Sequence[Data], until: str) -> tuple[int | None, str]:
    """(exit code, message) once the watch is over, else (None, what is pending)."""
    if until != states.FAILED:
        failed = [r for r in rows if r["state"] == states.FAILED]
        if failed:
            why = "; ".join(f"{r['node']}: {r.get('error') or 'no error given'}" for r in failed)
            return EXIT_FAILED, f"failed: {why}"
    pending = [r for r in rows if not states.reached(r["state"], until)]
    if not pending:
        return 0, f"all {len(rows)} nodes reached {until}"
    return None, ", ".join(f"{r['node']} ({r['state']})" for r in pending)


def watch(
    actions: Actions, names: list[str] | None, until: str, timeout: float, interval: float
) -> tuple[int, list[Data]]:
    """Poll until every node reached `until`, one failed, or `timeout` passed."""
    deadline = time.monotonic() + timeout
    last: dict[str, str] = {}
    screen = Live(console=console, auto_refresh=False, transient=True)
    with screen if console.is_terminal else contextlib.nullcontext(screen):
        while True:
            rows = actions.status(names)
            code, message = check(rows, until)
            if console.is_terminal:
                screen.update(table(rows, time.time(), summary(rows)), refresh=True)
            else:
                report_changes(rows, last)
            if code is not None or time.monotonic() >= deadline:
                break
            time.sleep(interval)
    if code is None:
        code, message = EXIT_TIMEOUT, f"timed out after {timeout:g}s waiting for {message}"
    err_console.print(message, highlight=False)
    return code, rows


@click.command("status")
@click.argument("nodes", required=False, metavar="[NODES]")
@click.option("--once", is_flag=True, help="Print one table and exit.")
@click.option(
    "-o", "--output", type=click.Choice(FORMATS), default="table", show_default=True,
    help="Output format (json and yaml print once).",
)  # fmt: skip
@click.option(
    "--watch-until", "until", type=click.Choice(states.STATES), metavar="STATE",
    help="Wait until the nodes reach STATE: exit 0, 1 if one fails, 3 on timeout.",
)  # fmt: skip
@click.option("--timeout", type=float, default=900.0, show_default=True, help="For --watch-until.")
@click.option("--interval", type=float, default=1.0, show_default=True, help="Refresh, seconds.")
@click.option("--graph", is_flag=True, help="Print the node state machine as Graphviz dot.")
@click.pass_obj
def status(
    ctx: CliContext,
    /,
    nodes: str | None,
    once: bool,
    output: str,
    until: str | None,
    timeout: float,
    interval: float,
    graph: bool,
) -> None:
    """Node states: NODES (a hostlist such as n[001-064]) or all nodes, live until Ctrl-C."""
    if graph:
        click.echo(states.to_dot(), nl=False)
        return
    names = expand(nodes) if nodes else None
    if until is not None:
        code, rows = watch(ctx.actions, names, until, timeout, max(interval, 0.1))
        show(rows, output)
        click.get_current_context().exit(code)
    if once or output != "table" or not console.is_terminal:
        show(ctx.actions.status(names), output)
        return
    live(ctx.actions, names, max(interval, 0.1))


COMMANDS = [status]
