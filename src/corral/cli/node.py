"""`corral node add|list|show|set|delete|reinstall|service`; NAMES accept hostlist ranges.

`node list` reads plain data (`CliContext.nodes`: the API's, or a local SQLite
store's read with the standard library): it loads neither the database library
nor the pydantic models, which were most of its start-up time; the commands
that need the models import them where they run.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import click

from corral.cli.context import CliContext
from corral.cli.output import emit, err_console, output_option, success
from corral.cli.settings_options import csv, settings_changes, settings_options
from corral.inventory.hostlists import expand

if TYPE_CHECKING:
    from corral.inventory.merge import EffectiveNode
    from corral.inventory.types import Data


def _node_fields(params: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if params.get("switch") is not None or params.get("switch_port") is not None:
        raise click.UsageError(
            "--switch and --switch-port are gone (nothing used them): record the port in "
            "the switch map with `corral switch map SWITCH PORT NODE`"
        )
    if params.get("rpi_serial") is not None:
        out["rpi_serial"] = params["rpi_serial"] or None
    if params.get("profile") is not None:
        out["profiles"] = csv(params["profile"])
    return out


def node_options(func: Any) -> Any:
    opts = [
        click.option("--profile", help="Profiles, comma separated, merged in order"),
        click.option("--mac", help="MAC of the primary interface (one node only)"),
        click.option("--ip", help="Address on the primary network (one node only)"),
        # gone: the switch map holds ports (`corral switch map`); kept to say so
        click.option("--switch", hidden=True),
        click.option("--switch-port", hidden=True),
        click.option("--rpi-serial", help="Raspberry Pi serial number"),
    ]
    for opt in reversed(opts):
        func = opt(func)
    return settings_options(func)


@click.group()
def node() -> None:
    """Nodes: machines, named singly or by ranges like n[001-128]."""


@node.command("add")
@click.argument("names")
@node_options
@click.pass_obj
def add(ctx: CliContext, /, names: str, mac: str | None, ip: str | None, **params: Any) -> None:
    """Create nodes NAMES (e.g. n[001-064]); addresses come from the primary network."""
    node_names = expand(names)
    data = {**settings_changes(params), **_node_fields(params)}
    created = ctx.actions.add_nodes(node_names, data, mac=mac, ip=ip)
    # NAMES already is a hostlist of exactly these nodes; compressing 10,000 names
    # again with python-hostlist took half a second
    success(f"{len(created)} node(s) created: {names.strip()}")


@node.command("set")
@click.argument("names")
@node_options
@click.pass_obj
def set_(ctx: CliContext, /, names: str, mac: str | None, ip: str | None, **params: Any) -> None:
    """Change settings of nodes NAMES."""
    node_names = expand(names)

    changes = {**settings_changes(params), **_node_fields(params)}
    if not changes and not (mac or ip):
        raise click.UsageError("nothing to change: give at least one option")
    changed = ctx.actions.set_nodes(node_names, changes, mac=mac, ip=ip)
    success(f"{len(changed)} node(s) updated")


def _primary(node: Data) -> Data:
    """The node's first interface as the API sends it (empty without one)."""
    interfaces = node.get("interfaces") or [{}]
    first: Data = interfaces[0]
    return first


@node.command("list")
@click.argument("names", required=False)
@output_option
@click.pass_obj
def list_(ctx: CliContext, /, names: str | None, output: str) -> None:
    """List nodes (all, or those in NAMES)."""
    table = output == "table"
    nodes = ctx.nodes(expand(names) if names else None, effective=table)
    if not table:
        emit(nodes, output, (), list)
        return

    def rows() -> list[tuple[Any, ...]]:
        out = []
        for n in nodes:
            eff, primary = n["effective"], _primary(n)
            profiles = ",".join(n.get("profiles", []))
            boot = eff.get("boot") or "stateless"
            out.append(
                (n["name"], profiles, eff.get("image"), primary.get("ip"), primary.get("mac"), boot)
            )
        return out

    emit(None, output, ("NAME", "PROFILES", "IMAGE", "IP", "MAC", "BOOT"), rows)


def effective_values(eff: EffectiveNode) -> dict[str, Any]:
    """Effective settings flattened to dotted keys, for the show table."""
    data = eff.settings.model_dump(mode="json")
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if key in ("power", "tags", "scripts") and isinstance(value, dict):
            for sub, v in value.items():
                if isinstance(v, dict):
                    flat.update({f"{key}.{sub}.{k}": x for k, x in v.items()})
                elif v is not None:
                    flat[f"{key}.{sub}"] = v
        elif value not in (None, [], {}):
            flat[key] = value
    return flat


@node.command("show")
@click.argument("name")
@output_option
@click.pass_obj
def show(ctx: CliContext, /, name: str, output: str) -> None:
    """Show node NAME with its effective settings and where each comes from."""
    from corral.inventory import ops

    inv = ctx.actions.inventory()
    rec = ops.get(inv.nodes, name, "node")
    eff = inv.effective(name)
    values = effective_values(eff)
    data = {
        **rec.model_dump(mode="json", exclude_defaults=True),
        "effective": {k: {"value": v, "origin": eff.origin(k)} for k, v in values.items()},
    }

    def rows() -> list[tuple[Any, ...]]:
        out: list[tuple[Any, ...]] = [
            ("name", rec.name, ""),
            ("profiles", ",".join(rec.profiles), "node"),
        ]
        for i, iface in enumerate(rec.interfaces):
            text = f"{iface.network} mac={iface.mac or '-'} ip={iface.ip or '-'}"
            out.append((f"interfaces[{i}]", text, "node"))
        for key, value in values.items():
            shown = " ".join(value) if isinstance(value, list) else value
            if key.startswith("scripts.") and isinstance(value, str):
                lines = value.strip().splitlines()
                shown = lines[0] + (f" ... ({len(lines)} lines)" if len(lines) > 1 else "")
            out.append((key, shown, eff.origin(key)))
        return out

    emit(data, output, ("FIELD", "VALUE", "FROM"), rows, title=f"node {name}")


@node.command("delete")
@click.argument("names")
@click.pass_obj
def delete(ctx: CliContext, /, names: str) -> None:
    """Delete nodes NAMES."""
    node_names = expand(names)
    ctx.actions.delete_nodes(node_names)
    success(f"{len(node_names)} node(s) deleted")


@node.command("discovered")
@output_option
@click.pass_obj
def discovered(ctx: CliContext, /, output: str) -> None:
    """Machines that booted but are not nodes yet (by DHCP or the iPXE menu)."""
    records = ctx.actions.discovered()
    emit(
        records,
        output,
        ("MAC", "SEEN FIRST", "SEEN LAST", "ARCH", "VENDOR CLASS", "RELAY / PORT"),
        lambda: [
            (
                r["mac"],
                _when(r["first_seen"]),
                _when(r["last_seen"]),
                r.get("client_arch"),
                r.get("vendor_class"),
                " ".join(str(r[k]) for k in ("remote_id", "circuit_id") if r.get(k)),
            )
            for r in records
        ],
    )


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


@node.command("adopt")
@click.argument("mac")
@click.argument("name")
@click.option("--profile", help="Profiles for the node, comma separated")
@click.pass_obj
def adopt(ctx: CliContext, /, mac: str, name: str, profile: str | None) -> None:
    """Make discovered machine MAC node NAME (created if it does not exist)."""
    created = ctx.actions.adopt(mac, name, csv(profile))
    success(f"{mac} is now node {created.name}")


@node.command("enroll-code")
@click.option(
    "--minutes",
    type=click.IntRange(1, 7 * 24 * 60),
    default=60,
    show_default=True,
    help="How long the code is good for",
)
@output_option
@click.pass_obj
def enroll_code(ctx: CliContext, /, minutes: int, output: str) -> None:
    """Make a one-time code that lets one unknown machine pick its node in the iPXE menu.

    The code is shown once (the server keeps only its hash), is good for one
    adoption, and expires after --minutes. Type it at the machine's console.
    """
    made = ctx.actions.enroll_code(minutes)
    emit(made, output, ("CODE", "EXPIRES"), lambda: [(made["code"], _when(made["expires"]))])


def _reset(ctx: CliContext, names: list[str]) -> None:
    """Power-reset `names` through their drivers; exit 1 if any failed."""
    inv = ctx.local("node --reset").read()  # BMC passwords: only the local store has them
    import asyncio  # here: start-up time of `node list`

    from corral.power.run import Action, run_power, targets_for

    results = asyncio.run(run_power(targets_for(inv, names), Action.RESET))
    for r in results:
        if not r.ok:
            err_console.print(f"[red]reset of {r.node} failed:[/red] {r.error}", highlight=False)
    if not all(r.ok for r in results):
        raise SystemExit(1)


_RESET = click.option("--reset", is_flag=True, help="Also power-reset the nodes now")


@node.command("reinstall")
@click.argument("names")
@_RESET
@click.pass_obj
def reinstall(ctx: CliContext, /, names: str, reset: bool) -> None:
    """Reinstall stateful nodes NAMES at their next network boot (not from their disk)."""
    node_names = ctx.actions.reinstall(expand(names))
    success(f"{len(node_names)} node(s) reinstall at their next network boot")
    if reset:
        _reset(ctx, node_names)


@node.command("service")
@click.argument("names")
@click.option("--off", is_flag=True, help="Leave service mode: boot as configured again")
@_RESET
@click.pass_obj
def service(ctx: CliContext, /, names: str, off: bool, reset: bool) -> None:
    """Boot NAMES into the rescue environment (SSH as root with the admin key, and console).

    The nodes stay in service mode at every boot until `--off`.
    """
    node_names = ctx.actions.service_mode(expand(names), on=not off)
    if off:
        success(f"{len(node_names)} node(s) leave service mode at their next boot")
    else:
        success(f"{len(node_names)} node(s) boot into service mode: corral ssh NODE to log in")
    if reset:
        _reset(ctx, node_names)


COMMANDS = [node]
