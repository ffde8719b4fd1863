"""`corral rpi eeprom-config NODE`: the bootloader settings to put on a Raspberry Pi.

A separate noun from `corral board` (the Turing Pi BMC's actions live there):
this only prints what to write into a board's EEPROM with `rpi-eeprom-config`.
"""

from __future__ import annotations

import click

from corral.boot.rpi import EepromTarget, eeprom_config, normalize_serial
from corral.cli.context import CliContext
from corral.config import DEFAULT_HTTP_PORT
from corral.images.rpisign import public_pem, site_key
from corral.inventory.errors import InventoryError


@click.group()
def rpi() -> None:
    """Raspberry Pi 4/5 network boot (docs/boards.md)."""


@rpi.command("eeprom-config")
@click.argument("node")
@click.option("--server-ip", required=True, help="The address the board reaches corral at")
@click.option(
    "--http-port",
    type=int,
    default=DEFAULT_HTTP_PORT,
    show_default=True,
    help="corral serve's plain HTTP port (HTTP_PORT with --http)",
)
@click.option("--http", is_flag=True, help="HTTP boot (mode 7) instead of TFTP; with the key")
@click.pass_obj
def eeprom_config_cmd(
    ctx: CliContext, /, node: str, server_ip: str, http_port: int, http: bool
) -> None:
    """Print the rpi-eeprom-config settings for NODE (and, with --http, the public key)."""
    found = ctx.actions.inventory().nodes.get(node)
    if found is None:
        raise InventoryError(f"no node {node!r} (corral node list)")
    try:
        serial = normalize_serial(found.rpi_serial) if found.rpi_serial else None
    except ValueError as exc:
        raise InventoryError(f"node {node}: {exc}: corral node set {node} --rpi-serial S") from exc
    click.echo(eeprom_config(serial, EepromTarget(server_ip, http_port), http), nl=False)
    if http:
        home = ctx.local("rpi eeprom-config --http").settings.paths.home
        click.echo("\n# the public key to store in the EEPROM (rpi-eeprom-config --pubkey FILE):")
        click.echo(public_pem(site_key(home)), nl=False)
    elif serial is None:
        click.echo(f"# node {node} has no --rpi-serial: set TFTP_PREFIX=2 (MAC) or add one")


COMMANDS = [rpi]
