"""Printing results: tables for people, JSON or YAML for programs.

Every list and show command takes `-o table|json|yaml` through `output_option`.

Tables look like rich's (`rich.table.Table`, no outer edge, bold header) but
are drawn by `Grid`, with string formatting: rich lays out every cell (measure,
wrap, pad), about 1 ms a row, which was half of `corral node list`'s time on
100 nodes and 4-12 s on 10,000. rich still decides what a terminal gets
(colour or not, the width) and draws the tables that need its layout: a title,
multi-line cells, or a table wider than the terminal (it folds cells, unless the
table is longer than `PLAIN_TABLE_ROWS`, where wide cells widen their column).
Cells are plain text, never rich markup or `:emoji:` codes (a MAC address with
`:ab:` in it once printed as 🆎).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import click
from rich.cells import cell_len
from rich.console import Console
from rich.segment import Segment
from rich.style import Style

if TYPE_CHECKING:
    from rich.console import ConsoleOptions, RenderResult
    from rich.table import Table

F = TypeVar("F", bound=Callable[..., Any])
FORMATS = ("table", "json", "yaml")

PLAIN_TABLE_ROWS = 500  # longer tables are never folded to the terminal's width
console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)
_BOLD = Style(bold=True)


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
        import yaml  # here: a table or JSON needs no YAML library (start-up time)

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
    console.print(Grid(columns, rows(), title))


class Grid:
    """A table of plain-text cells, drawn as rich draws `Table(show_edge=False,
    header_style="bold")`; `tests/cli/test_output.py` compares the two."""

    def __init__(
        self, columns: Sequence[str], rows: Sequence[Sequence[Any]], title: str | None = None
    ) -> None:
        self.columns = list(columns)
        self.rows = [["" if v is None else str(v) for v in row] for row in rows]
        self.title = title

    def widths(self) -> list[int]:
        """Each column's natural width: its widest cell, header included."""
        widths = [cell_len(c) for c in self.columns]
        for row in self.rows:
            for i, cell in enumerate(row):
                n = len(cell) if cell.isascii() else cell_len(cell)
                widths[i] = max(widths[i], n)
        return widths

    def simple(self) -> bool:
        """Whether string formatting draws what rich would: no title, one line a cell."""
        return self.title is None and not any(
            "\n" in c or "\r" in c or "\t" in c for row in self.rows for c in row
        )

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        widths = self.widths()
        fits = sum(widths) + 3 * len(widths) - 1 <= options.max_width
        if not self.simple() or not (fits or len(self.rows) > PLAIN_TABLE_ROWS):
            yield self.rich_table()
            return
        yield from self._header(widths)
        yield Segment("╇".join("━" * (w + 2) for w in widths) + "\n")
        lines = [
            "│".join(_pad(c, w) for c, w in zip(row, widths, strict=True)) for row in self.rows
        ]
        if lines:
            yield Segment("\n".join(lines) + "\n")

    def _header(self, widths: list[int]) -> Iterator[Segment]:
        for i, (name, width) in enumerate(zip(self.columns, widths, strict=True)):
            if i:
                yield Segment("┃")
            yield Segment(" ", _BOLD)
            yield Segment(name + " " * (width - cell_len(name)), _BOLD)
            yield Segment(" ", _BOLD)
        yield Segment.line()

    def rich_table(self) -> Table:
        """rich's own table of the same cells, for what needs its layout."""
        from rich.table import Table
        from rich.text import Text

        table = Table(title=self.title, show_edge=False, header_style="bold")
        for col in self.columns:
            table.add_column(col, overflow="fold")
        for row in self.rows:
            table.add_row(*(Text(cell) for cell in row))
        return table


def _pad(cell: str, width: int) -> str:
    """` cell ` padded to `width` terminal columns (wide characters count two)."""
    fill = width - (len(cell) if cell.isascii() else cell_len(cell))
    return f" {cell}{' ' * fill} "


def success(message: str) -> None:
    err_console.print(f"[green]✓[/green] {message}", highlight=False)
