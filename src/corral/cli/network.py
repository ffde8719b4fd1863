"""`corral network add|list|show|set|delete`."""

from __future__ import annotations

from typing import Any

import click

from corral.cli.context import CliContext
from corral.cli.output import emit, output_option, success
from corral.cli.settings_options import csv, describe
from corral.inventory import ops
from corral.inventory.models import Network


def _network_fields(params: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in ("cidr", "gateway", "domain", "mtu", "lease_time"):
        if params.get(key) is not None:
            out[key] = params[key] or None
    if params.get("dns") is not None:
        out["dns_servers"] = csv(params["dns"])
    if params.get("ntp") is not None:
        out["ntp_servers"] = csv(params["ntp"])
    if params.get("dynamic_range") is not None:
        out["dynamic_range"] = params["dynamic_range"] or None
    return out


def network_options(func: Any) -> Any:
    opts = [
        click.option("--cidr", help=describe(Network, "cidr")),
        click.option("--gateway", help=describe(Network, "gateway")),
        click.option("--dns", help="DNS servers, comma separated (empty: the corral server)"),
        click.option("--ntp", help="NTP servers, comma separated (empty: the corral server)"),
        click.option("--domain", help=describe(Network, "domain")),
        click.option("--mtu", type=int, help=describe(Network, "mtu")),
        click.option("--dynamic-range", help=describe(Network, "dynamic_range")),
        click.option("--lease-time", type=int, help=describe(Network, "lease_time")),
    ]
    for opt in reversed(opts):
        func = opt(func)
    return func


@click.group()
def network() -> None:
    """Networks that nodes attach to (addresses, gateway, DNS, discovery range)."""


@network.command("add")
@click.argument("name")
@network_options
@click.pass_obj
def add(ctx: CliContext, /, name: str, **params: Any) -> None:
    """Create network NAME (--cidr is required)."""
    if not params.get("cidr"):
        raise click.UsageError("--cidr is required, e.g. --cidr 10.77.0.0/24")
    data = {"name": name, **_network_fields(params)}
    net = ctx.actions.add_network(data)
    success(f"network {net.name} {net.cidr} created")


@network.command("set")
@click.argument("name")
@network_options
@click.pass_obj
def set_(ctx: CliContext, /, name: str, **params: Any) -> None:
    """Change settings of network NAME (an empty value clears an optional one)."""
    changes = _network_fields(params)
    if not changes:
        raise click.UsageError("nothing to change: give at least one option")
    ctx.actions.set_network(name, changes)
    success(f"network {name} updated")


@network.command("list")
@output_option
@click.pass_obj
def list_(ctx: CliContext, /, output: str) -> None:
    """List networks."""
    nets = list(ctx.actions.inventory().to_cluster().networks)
    emit(
        [n.model_dump(mode="json", exclude_defaults=True) for n in nets],
        output,
        ("NAME", "CIDR", "GATEWAY", "DNS", "DYNAMIC RANGE", "MTU"),
        lambda: [
            (n.name, n.cidr, n.gateway, ",".join(map(str, n.dns_servers)), n.dynamic_range, n.mtu)
            for n in nets
        ],
    )


@network.command("show")
@click.argument("name")
@output_option
@click.pass_obj
def show(ctx: CliContext, /, name: str, output: str) -> None:
    """Show network NAME."""
    net = ops.get(ctx.actions.inventory().networks, name, "network")
    data = net.model_dump(mode="json")
    emit(data, output, ("FIELD", "VALUE"), lambda: [(k, v) for k, v in data.items()])


@network.command("delete")
@click.argument("name")
@click.pass_obj
def delete(ctx: CliContext, /, name: str) -> None:
    """Delete network NAME (refused while a profile or node uses it)."""
    ctx.actions.delete_network(name)
    success(f"network {name} deleted")


COMMANDS = [network]
