"""Printing results: rich tables for people, JSON or YAML for programs.

Every list and show command takes `-o table|json|yaml` through `output_option`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click
import yaml
from rich.console import Console
from rich.table import Table

F = TypeVar("F", bound=Callable[..., Any])
FORMATS = ("table", "json", "yaml")

PLAIN_TABLE_ROWS = 500  # longer tables skip rich's per-cell layout (see `plain_table`)
console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)


def output_option(func: F) -> F:
    return click.option(
        "-o",
        "--output",
        "output",
        type=click.Choice(FORMATS),
        default="table",
        show_default=True,
        help="Output format.",
    )(func)


def emit_data(data: Any, fmt: str) -> None:
    """JSON or YAML of plain data, written straight to stdout."""
    if fmt == "json":
        click.echo(json.dumps(data, indent=2, sort_keys=False, default=str))
    else:
        click.echo(yaml.safe_dump(data, sort_keys=False, default_flow_style=False), nl=False)


def emit(
    data: Any,
    fmt: str,
    columns: Sequence[str],
    rows: Callable[[], Sequence[Sequence[Any]]],
    title: str | None = None,
) -> None:
    """Print `data` as JSON/YAML, or `rows()` as a table with `columns`."""
    if fmt != "table":
        emit_data(data, fmt)
        return
    table_rows = rows()
    if len(table_rows) > PLAIN_TABLE_ROWS and title is None:
        plain_table(columns, table_rows)
        return
    table = Table(title=title, show_edge=False, header_style="bold")
    for col in columns:
        table.add_column(col, overflow="fold")
    for row in table_rows:
        table.add_row(*("" if v is None else str(v) for v in row))
    console.print(table)


def plain_table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """The rich table's look, drawn with string formatting: for long lists.

    rich lays out each cell (measure, wrap, pad), about 1 ms per row: 10,000
    nodes took 4-12 s. This writes the same lines without wrapping (wide
    cells widen their column) in a few tens of milliseconds.
    """
    cells = [["" if v is None else str(v) for v in row] for row in rows]
    widths = [len(c) for c in columns]
    for row in cells:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))

    def line(values: Sequence[str], sep: str) -> str:
        return sep.join(f" {v.ljust(w)} " for v, w in zip(values, widths, strict=True)).rstrip()

    out = [line(columns, "┃"), "╇".join("━" * (w + 2) for w in widths)]
    out.extend(line(row, "│") for row in cells)
    click.echo("\n".join(out))


def success(message: str) -> None:
    err_console.print(f"[green]✓[/green] {message}", highlight=False)
