"""`corral power on|off|soft-off|cycle|reset|status|boot-network TARGETS`.

Targets take hostlist ranges; nodes run in parallel (`--concurrency`), one
failure never stops the others, and the exit code is 0 only if all succeeded.
With `--server` the server runs the action (it holds the BMC passwords).
"""

from __future__ import annotations

import time
from typing import Any

import click

from corral.cli.context import CliContext
from corral.cli.output import emit, err_console, output_option
from corral.inventory.hostlists import expand
from corral.power.run import DEFAULT_CONCURRENCY, Action, PowerResult


@click.group()
def power() -> None:
    """Power control through each node's driver.

    Drivers: ipmi, redfish, turingpi, clusterhat, qemu, ssh, manual; board-only
    actions (USB mode, flash, mass storage) are `corral board`."""


def _command(action: Action, help_text: str) -> click.Command:
    @click.argument("targets")
    @click.option(
        "--concurrency",
        type=click.IntRange(1, 4096),
        default=DEFAULT_CONCURRENCY,
        show_default=True,
        help="Nodes handled at once.",
    )
    @output_option
    @click.pass_obj
    def command(ctx: CliContext, /, targets: str, concurrency: int, output: str) -> None:
        started = time.monotonic()
        # with --server the server runs it: it holds the BMC passwords
        results = ctx.actions.power(expand(targets), str(action), concurrency)
        show_results(results, output, time.monotonic() - started, concurrency)
        if not all(r.ok for r in results):
            raise SystemExit(1)

    command.__doc__ = help_text
    return power.command(str(action))(command)


def show_results(results: list[PowerResult], output: str, seconds: float, concurrency: int) -> None:
    data: Any = [r.to_dict() for r in results]

    def rows() -> list[tuple[Any, ...]]:
        return [(r.node, r.driver or "-", r.result, r.error or "") for r in results]

    emit(data, output, ("NODE", "DRIVER", "RESULT", "ERROR"), rows)
    failed = sum(not r.ok for r in results)
    err_console.print(
        f"{len(results)} node(s), {failed} failed, {seconds:.2f} s at concurrency {concurrency}",
        highlight=False,
    )


for _action, _help in (
    (Action.ON, "Power TARGETS on (waits until the controller reports on)."),
    (Action.OFF, "Power TARGETS off at once (hard off)."),
    (Action.SOFT_OFF, "Ask TARGETS' operating systems to shut down."),
    (Action.CYCLE, "Power TARGETS off and on again."),
    (Action.RESET, "Reset TARGETS (warm reset)."),
    (Action.STATUS, "Show TARGETS' power state."),
    (Action.BOOT_NETWORK, "Make TARGETS' next boot a network boot (once)."),
):
    _command(_action, _help)

COMMANDS = [power]
