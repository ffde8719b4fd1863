"""`corral serve`: run the provisioning services in the foreground."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import click

from corral.cli.context import CliContext
from corral.net import address_of_interface

# corral.services.serve.DEFAULT_HTTP_PORT (a test keeps them equal): importing that
# module loads aiohttp and every service, which every other command would pay for.
DEFAULT_HTTP_PORT = 9480


@click.command("serve")
@click.option("--interface", help="Serve DHCP on this interface only (and advertise its address)")
@click.option("--address", default="0.0.0.0", show_default=True, help="Address to listen on")
@click.option("--advertise", help="Address nodes reach this server at (default: of --interface)")
@click.option("--http-port", default=DEFAULT_HTTP_PORT, show_default=True, type=int)
@click.option("--tftp-port", default=69, show_default=True, type=int)
@click.option("--dhcp-port", default=67, show_default=True, type=int)
@click.option("--no-dhcp", is_flag=True, help="Do not run the DHCP server")
@click.option("--no-tftp", is_flag=True, help="Do not run the TFTP server")
@click.option(
    "--proxy-dhcp",
    is_flag=True,
    help="Answer PXE clients only and hand out no addresses (a router does DHCP)",
)
@click.option(
    "--tftp-root",
    type=click.Path(path_type=Path, file_okay=False),
    help="Serve this directory over TFTP (default CORRAL_HOME/tftp with iPXE)",
)
@click.option("--bt-port", default=6881, show_default=True, help="The image seeder's port")
@click.option("--no-seeder", is_flag=True, help="Do not seed images over BitTorrent")
@click.option("-v", "--verbose", count=True, help="More logging (-vv for debug)")
@click.pass_obj
def serve(
    ctx: CliContext,
    /,
    interface: str | None,
    address: str,
    advertise: str | None,
    http_port: int,
    tftp_port: int,
    dhcp_port: int,
    no_dhcp: bool,
    no_tftp: bool,
    proxy_dhcp: bool,
    tftp_root: Path | None,
    bt_port: int,
    no_seeder: bool,
    verbose: int,
) -> None:
    """Run DHCP, TFTP, HTTP (API, boot scripts, artifacts, tracker) and the image seeder."""
    from corral.services.serve import ServeOptions, serve_forever

    level = logging.WARNING - 10 * min(verbose + 1, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if advertise is None:
        advertise = address_of_interface(interface) if interface else None
    if advertise is None:
        advertise = address if address != "0.0.0.0" else "127.0.0.1"
    options = ServeOptions(
        address=address,
        advertise=advertise,
        interface=interface,
        http_port=http_port,
        tftp_port=tftp_port,
        dhcp_port=dhcp_port,
        dhcp=not no_dhcp,
        proxy_dhcp=proxy_dhcp,
        tftp=not no_tftp,
        tftp_root=tftp_root,
        seeder=not no_seeder,
        bt_port=bt_port,
    )
    asyncio.run(serve_forever(ctx.app, options))


COMMANDS = [serve]
