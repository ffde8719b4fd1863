"""`corral serve`: run the provisioning services in the foreground."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import click

from corral.cli.context import CliContext
from corral.config import DEFAULT_HTTP_PORT, DEFAULT_HTTPS_PORT
from corral.net import address_of_interface, dhcp_interface


@click.command("serve")
@click.option("--interface", help="Serve DHCP on this interface only (and advertise its address)")
@click.option(
    "--address",
    default="0.0.0.0",
    show_default=True,
    help="Address to listen on (DHCP listens on the interface that holds it)",
)
@click.option("--advertise", help="Address nodes reach this server at (default: of --interface)")
@click.option(
    "--http-port",
    default=DEFAULT_HTTP_PORT,
    show_default=True,
    type=int,
    help="Plain HTTP: iPXE scripts, kernels, initramfs, signed images, tracker (and the API)",
)
@click.option(
    "--https-port",
    type=int,
    help=f"HTTPS for the API and the nodes, with a certificate from the cluster CA "
    f"[default: {DEFAULT_HTTPS_PORT}; any free port when --http-port is 0]",
)
@click.option(
    "--no-tls",
    is_flag=True,
    help="Serve no HTTPS. Nodes cannot boot then: their initramfs trusts the cluster CA "
    "and refuses a plain http:// API",
)
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
@click.option(
    "--tftp-workers",
    type=click.IntRange(min=0),
    default=None,
    help="Processes that run TFTP transfers (0: none, all in this process) "
    "[default: one per core, at most 4]",
)
@click.option("--no-dns", is_flag=True, help="Do not answer DNS for the cluster's names")
@click.option("--dns-port", default=53, show_default=True, type=int)
@click.option(
    "--dns-upstream",
    "dns_upstreams",
    multiple=True,
    metavar="IP",
    help="Resolver for names outside the cluster (repeatable; default: /etc/resolv.conf's)",
)
@click.option("--bt-port", default=6881, show_default=True, help="The image seeder's port")
@click.option("--no-seeder", is_flag=True, help="Do not seed images over BitTorrent")
@click.option(
    "--seed-rate", type=click.IntRange(min=0), default=0, show_default=True, metavar="BYTES/S",
    help="Cap the image seeder's upload (0: the link's full rate). Measured: in a 64-node "
    "storm half the server's link sent 40% fewer image bytes in the same boot time; "
    "with 8-32 nodes the same cap cost 5-10% of the time (docs/images.md, the swarm).",
)  # fmt: skip
@click.option(
    "--heartbeat-timeout", type=click.FloatRange(min=4.0), default=60.0, show_default=True,
    help="Seconds without a node agent heartbeat before the node is marked lost.",
)  # fmt: skip
@click.option("-v", "--verbose", count=True, help="More logging (-vv for debug)")
@click.pass_obj
def serve(
    ctx: CliContext,
    /,
    interface: str | None,
    address: str,
    advertise: str | None,
    http_port: int,
    https_port: int | None,
    no_tls: bool,
    tftp_port: int,
    dhcp_port: int,
    no_dhcp: bool,
    no_tftp: bool,
    proxy_dhcp: bool,
    tftp_root: Path | None,
    tftp_workers: int | None,
    no_dns: bool,
    dns_port: int,
    dns_upstreams: tuple[str, ...],
    bt_port: int,
    no_seeder: bool,
    seed_rate: int,
    heartbeat_timeout: float,
    verbose: int,
) -> None:
    """Run DHCP, TFTP, HTTP (API, boot scripts, artifacts, tracker), DNS and the image seeder."""
    from corral.services.dns import resolv_conf_upstreams
    from corral.services.http.agenthub import AgentSettings
    from corral.services.serve import ServeError, ServeOptions, serve_forever, served_seed
    from corral.services.tftp_pool import default_workers

    level = logging.WARNING - 10 * min(verbose + 1, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    interface_address = address_of_interface(interface) if interface else None
    if advertise is None:
        advertise = interface_address
    if advertise is None:
        advertise = address if address != "0.0.0.0" else "127.0.0.1"
    if not no_dhcp or proxy_dhcp:  # refused here, in one line, before anything starts
        interface = dhcp_interface(address, interface)
    options = ServeOptions(
        address=address,
        advertise=advertise,
        interface=interface,
        http_port=http_port,
        https_port=None if no_tls else https_port_for(https_port, http_port),
        tls_names=tuple(a for a in (interface_address,) if a),
        tftp_port=tftp_port,
        dhcp_port=dhcp_port,
        dhcp=not no_dhcp,
        proxy_dhcp=proxy_dhcp,
        tftp=not no_tftp,
        tftp_root=tftp_root,
        tftp_workers=default_workers() if tftp_workers is None else tftp_workers,
        seeder=not no_seeder,
        bt_port=bt_port,
        seeder_settings=served_seed(seed_rate),
        agent=AgentSettings.for_timeout(heartbeat_timeout),
        dns=not no_dns,
        dns_port=dns_port,
        dns_upstreams=list(dns_upstreams) or resolv_conf_upstreams(),
    )
    try:
        asyncio.run(serve_forever(ctx.local(), options))
    except ServeError as exc:
        raise click.ClickException(str(exc)) from exc


def https_port_for(asked: int | None, http_port: int) -> int:
    """The HTTPS port: as asked, else the default, else any free one when HTTP's is 0 (tests)."""
    if asked is not None:
        return asked
    return 0 if http_port == 0 else DEFAULT_HTTPS_PORT


COMMANDS = [serve]
