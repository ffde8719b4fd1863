"""`corral board capabilities|usb|mass-storage|flash|uart`: what a board controller does
besides power (Turing Pi 2 today), one noun for every driver.

Each command asks the node's driver for the capability first, so a driver that
lacks it is refused at once ("driver ipmi cannot flash"), before any request.
Board actions need the BMC passwords, which only the server's own store holds:
with `--server` they are refused in one line (run them on the server).
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from corral.cli.context import CliContext
from corral.cli.output import console, emit, err_console, output_option
from corral.inventory.hostlists import expand
from corral.inventory.ops import get
from corral.power.base import Capability, PowerDriver
from corral.power.board import USB_MODES, USB_ROUTES, BoardActions
from corral.power.errors import PowerError
from corral.power.registry import make_driver

T = TypeVar("T")
STAGES = {"hash": "sha256", "upload": "upload", "write": "write to module"}


@click.group()
def board() -> None:
    """Board-only actions: USB mode, flashing a module, mass storage, UART."""


def _driver(ctx: CliContext, node: str) -> PowerDriver:
    inv = ctx.local().read()  # refuses --server in one line
    get(inv.nodes, node, "node")
    return make_driver(node, inv.effective(node).settings.power)


def _board(ctx: CliContext, node: str, cap: Capability) -> BoardActions:
    """The node's driver if it can do `cap`; refused at once otherwise."""
    try:
        driver = _driver(ctx, node)
        driver.require(cap)
    except PowerError as exc:
        _fail(exc)
    if not isinstance(driver, BoardActions):  # e.g. an IPMI console: `corral console` only
        _fail(PowerError(f"driver {driver.name} cannot {cap} through corral board (node {node})"))
    return driver


def _run(work: Coroutine[Any, Any, T]) -> T:
    try:
        return asyncio.run(work)
    except PowerError as exc:
        _fail(exc)


def _fail(exc: PowerError) -> NoReturn:
    err_console.print(f"[red]error:[/red] {exc}", highlight=False)
    raise SystemExit(1)


@board.command("capabilities")
@click.argument("targets")
@output_option
@click.pass_obj
def capabilities(ctx: CliContext, /, targets: str, output: str) -> None:
    """What each of TARGETS' drivers can do (power actions and board actions)."""
    rows: list[dict[str, Any]] = []
    for name in expand(targets):
        try:
            driver = _driver(ctx, name)
        except PowerError as exc:
            rows.append({"node": name, "driver": None, "capabilities": [], "error": str(exc)})
            continue
        caps = sorted(str(c) for c in driver.capabilities)
        rows.append({"node": name, "driver": driver.name, "capabilities": caps, "error": None})
    emit(
        rows,
        output,
        ("NODE", "DRIVER", "CAN", "ERROR"),
        lambda: [
            (r["node"], r["driver"] or "-", " ".join(r["capabilities"]), r["error"] or "")
            for r in rows
        ],
    )


@board.command("usb")
@click.argument("node")
@click.option("--mode", type=click.Choice(USB_MODES), help="Set the mode (else: show the bus).")
@click.option("--route", type=click.Choice(USB_ROUTES), default="bmc", show_default=True,
              help="Where the bus goes: the BMC's own port or the board's USB-A port.")  # fmt: skip
@output_option
@click.pass_obj
def usb(ctx: CliContext, /, node: str, mode: str | None, route: str, output: str) -> None:
    """Show the board's USB bus, or give it to NODE's slot in --mode on --route."""
    driver = _board(ctx, node, Capability.USB)
    if mode is not None:
        _run(driver.set_usb(mode, route))
    state = _run(driver.usb_state())
    data = {"node": node, "usb_owner": state.node, "mode": state.mode, "route": state.route}
    emit(data, output, ("NODE", "USB OWNER", "MODE", "ROUTE"), lambda: [tuple(data.values())])


@board.command("mass-storage")
@click.argument("node")
@click.pass_obj
def mass_storage(ctx: CliContext, /, node: str) -> None:
    """Expose NODE's module storage (eMMC) to the BMC as a USB mass-storage device."""
    driver = _board(ctx, node, Capability.MASS_STORAGE)
    _run(driver.mass_storage())
    console.print(
        f"{node}: module storage is a USB mass-storage device of the BMC", highlight=False
    )


@board.command("uart")
@click.argument("node")
@click.option("--send", metavar="LINE", help="Send LINE to the module (else: print its output).")
@click.pass_obj
def uart(ctx: CliContext, /, node: str, send: str | None) -> None:
    """Print what NODE's module wrote to its UART since the last read, or --send a line.

    For an interactive session use `corral console NODE`."""
    driver = _board(ctx, node, Capability.CONSOLE)
    if send is not None:
        _run(driver.uart_write(send))
        return
    click.echo(_run(driver.uart_read()), nl=False)


@board.command("flash")
@click.argument("node")
@click.option("--image", "image", required=True,
              type=click.Path(exists=True, dir_okay=False, readable=True, path_type=Path),
              help="Raw disk image to write to the module (e.g. an RK1 or CM4 .img).")  # fmt: skip
@click.option("--yes", is_flag=True, help="Do not ask before overwriting the module.")
@click.pass_obj
def flash(ctx: CliContext, /, node: str, image: Path, yes: bool) -> None:
    """Write --image to NODE's module through its board's BMC; NODE is off afterwards.

    The BMC checks the image's sha256. Ctrl-C cancels the transfer on the board
    and powers NODE off."""
    driver = _board(ctx, node, Capability.FLASH)
    if not yes:
        click.confirm(f"Overwrite the storage of {node} with {image.name}?", abort=True)
    try:
        with _progress() as report:
            result = _run(driver.flash(image, report))
    except KeyboardInterrupt:
        err_console.print(
            f"flash of {node} cancelled (a transfer already begun is stopped on the board "
            f"and {node} powered off)",
            highlight=False,
        )
        raise SystemExit(130) from None
    console.print(
        f"{node}: wrote {result.size} bytes (sha256 {result.sha256[:16]}…) in "
        f"{result.seconds:.1f} s; the node is off: corral power on {node}",
        highlight=False,
    )


@contextmanager
def _progress() -> Iterator[Any]:
    """A rich progress bar per flash stage; yields the driver's progress callback."""
    columns = (
        TextColumn("{task.description:<16}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    tasks: dict[str, TaskID] = {}
    with Progress(*columns, console=err_console, transient=False) as bar:

        def report(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(STAGES.get(stage, stage), total=total or None)
            bar.update(tasks[stage], completed=done, total=total or None)

        yield report


COMMANDS = [board]
