"""`corral console NODE`: attach to the node's serial console through its driver.

IPMI serial-over-LAN and Redfish SSH consoles run their program (the password
in the environment, never on the command line); a QEMU serial socket and the
Turing Pi BMC's serial websocket are bridged to the terminal in raw mode
(Ctrl-] leaves both).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import termios
import tty
from collections.abc import Iterator

import click

from corral.cli.context import CliContext
from corral.cli.output import err_console
from corral.inventory.ops import get
from corral.power.base import Console
from corral.power.errors import PowerError
from corral.power.registry import make_driver

ESCAPE = b"\x1d"  # Ctrl-]


@click.command("console")
@click.argument("node")
@click.pass_obj
def console(ctx: CliContext, /, node: str) -> None:
    """Attach to NODE's serial console (IPMI SOL, Redfish, Turing Pi serial, QEMU).

    Runs on the server (it holds the BMC passwords and reaches the BMCs); with
    --server it refuses rather than look in this machine's database.
    """
    inv = ctx.local().read()
    get(inv.nodes, node, "node")
    try:
        plan = make_driver(node, inv.effective(node).settings.power).console()
    except PowerError as exc:
        err_console.print(f"[red]error:[/red] {exc}", highlight=False)
        raise SystemExit(1) from None
    err_console.print(f"console of {node}: {plan.description}", highlight=False)
    raise SystemExit(attach(plan))


def attach(plan: Console) -> int:
    """Run the console until the user leaves; an exit code."""
    if plan.argv:
        return subprocess.run(
            list(plan.argv), check=False, env={**os.environ, **plan.env}
        ).returncode
    if plan.unix_socket:
        with raw_terminal():
            asyncio.run(bridge_unix(plan.unix_socket))
        return 0
    if plan.attach:
        with raw_terminal():
            asyncio.run(plan.attach())
        return 0
    return 1


@contextlib.contextmanager
def raw_terminal() -> Iterator[None]:
    if not sys.stdin.isatty():
        yield
        return
    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    tty.setraw(fd)
    try:
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


async def bridge_unix(path: str) -> None:
    """Copy stdin to the socket and the socket to stdout until Ctrl-] or EOF."""
    reader, writer = await asyncio.open_unix_connection(path)
    loop = asyncio.get_running_loop()

    async def out() -> None:
        while data := await reader.read(4096):
            os.write(sys.stdout.fileno(), data)

    copier = asyncio.create_task(out())
    try:
        while data := await loop.run_in_executor(None, os.read, sys.stdin.fileno(), 1024):
            if ESCAPE in data:
                writer.write(data.split(ESCAPE)[0])
                break
            writer.write(data)
            await writer.drain()
    finally:
        copier.cancel()
        writer.close()


COMMANDS = [console]
