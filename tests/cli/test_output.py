"""Tables drawn by `Grid` are the bytes rich's own table draws, on a terminal and off it."""

from __future__ import annotations

import io
from collections.abc import Sequence

import pytest
from rich.console import Console
from rich.table import Table
from rich.text import Text

from corral.cli.output import PLAIN_TABLE_ROWS, Grid

NODE_COLUMNS = ("NAME", "PROFILES", "IMAGE", "IP", "MAC", "BOOT")
NODE_ROW = ("n001", "compute", None, "10.0.0.1", "52:54:00:12:34:56", "stateless")
CASES: list[tuple[Sequence[str], list[tuple[object, ...]]]] = [
    (NODE_COLUMNS, [NODE_ROW] * 3),
    (("A", "B"), []),  # a header and its rule only
    (("WIDE", "LONGER HEADER"), [("日本語", "x"), ("é", ""), (3, None)]),
    (("ONE",), [("x",)]),
]


def drawn(renderable: object, terminal: bool, width: int) -> str:
    out = io.StringIO()
    Console(file=out, soft_wrap=True, force_terminal=terminal, width=width).print(renderable)
    return out.getvalue()


def rich_table(columns: Sequence[str], rows: list[tuple[object, ...]]) -> Table:
    table = Table(show_edge=False, header_style="bold")
    for col in columns:
        table.add_column(col, overflow="fold")
    for row in rows:
        table.add_row(*(Text("" if v is None else str(v)) for v in row))
    return table


@pytest.mark.parametrize("terminal", [False, True])
@pytest.mark.parametrize("width", [200, 30])  # 30: the node table is folded by rich
@pytest.mark.parametrize(("columns", "rows"), CASES)
def test_the_grid_draws_what_rich_draws(
    columns: Sequence[str], rows: list[tuple[object, ...]], terminal: bool, width: int
) -> None:
    assert drawn(Grid(columns, rows), terminal, width) == drawn(
        rich_table(columns, rows), terminal, width
    )


def test_cells_are_plain_text_not_markup_or_emoji_codes() -> None:
    row = ("[bold]n1[/bold]", "52:54:00:ab:cd:ef")
    text = drawn(Grid(("NAME", "MAC"), [row]), False, 200)
    assert text.splitlines()[2] == " [bold]n1[/bold] │ 52:54:00:ab:cd:ef "
    folded = drawn(Grid(("NAME", "MAC"), [row]), False, 16)  # rich's layout, same cells
    assert "[bold" in folded and "🆎" not in folded


def test_a_long_table_is_never_folded_to_the_width() -> None:
    rows = [NODE_ROW] * (PLAIN_TABLE_ROWS + 1)
    lines = drawn(Grid(NODE_COLUMNS, rows), False, 40).splitlines()
    assert len(lines) == len(rows) + 2
    assert lines[2].split("│")[4].strip() == "52:54:00:12:34:56"
