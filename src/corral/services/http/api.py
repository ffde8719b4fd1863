"""REST API under /api/v1: networks, profiles, nodes, discovered machines, apply.

Each handler parses, calls the same `LocalActions` the CLI uses, and returns
JSON. Secrets are shown as `***`.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from corral.actions import inventory_data
from corral.inventory import ops
from corral.inventory.errors import InventoryError
from corral.inventory.fileformat import public_dict
from corral.inventory.hostlists import expand
from corral.inventory.models import Cluster, Record
from corral.services.dhcp_store import list_leases
from corral.services.http.context import context_of

routes = web.RouteTableDef()
KINDS = {"networks": "network", "profiles": "profile"}


def record_json(record: Record) -> dict[str, Any]:
    return record.model_dump(mode="json", exclude_defaults=True)


async def body(request: web.Request) -> dict[str, Any]:
    data = await request.json()
    if not isinstance(data, dict):
        raise InventoryError("request body must be a JSON object")
    return data


def names_of(value: Any) -> list[str]:
    if isinstance(value, str):
        return expand(value)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    raise InventoryError("'names' must be a hostlist string or a list of names")


@routes.get("/api/v1/inventory")
async def get_inventory(request: web.Request) -> web.Response:
    ctx = context_of(request)
    inv = await ctx.run(ctx.actions.inventory)
    return web.json_response(inventory_data(inv))


@routes.get("/api/v1/{kind:networks|profiles}")
async def list_records(request: web.Request) -> web.Response:
    ctx = context_of(request)
    inv = await ctx.run(ctx.actions.inventory)
    records = getattr(inv, request.match_info["kind"])
    return web.json_response([record_json(records[k]) for k in sorted(records)])


@routes.get("/api/v1/{kind:networks|profiles}/{name}")
async def get_record(request: web.Request) -> web.Response:
    ctx = context_of(request)
    kind = request.match_info["kind"]
    inv = await ctx.run(ctx.actions.inventory)
    record = ops.get(getattr(inv, kind), request.match_info["name"], KINDS[kind])
    return web.json_response(record_json(record))


@routes.post("/api/v1/{kind:networks|profiles}")
async def add_record(request: web.Request) -> web.Response:
    ctx = context_of(request)
    data = await body(request)
    kind = request.match_info["kind"]
    add = ctx.actions.add_network if kind == "networks" else ctx.actions.add_profile
    return web.json_response(record_json(await ctx.run(add, data)), status=201)


@routes.patch("/api/v1/{kind:networks|profiles}/{name}")
async def set_record(request: web.Request) -> web.Response:
    ctx = context_of(request)
    data = await body(request)
    kind = request.match_info["kind"]
    change = ctx.actions.set_network if kind == "networks" else ctx.actions.set_profile
    return web.json_response(record_json(await ctx.run(change, request.match_info["name"], data)))


@routes.delete("/api/v1/{kind:networks|profiles}/{name}")
async def delete_record(request: web.Request) -> web.Response:
    ctx = context_of(request)
    kind = request.match_info["kind"]
    delete = ctx.actions.delete_network if kind == "networks" else ctx.actions.delete_profile
    await ctx.run(delete, request.match_info["name"])
    return web.json_response({"deleted": request.match_info["name"]})


@routes.get("/api/v1/nodes")
async def list_nodes(request: web.Request) -> web.Response:
    ctx = context_of(request)
    inv = await ctx.run(ctx.actions.inventory)
    pattern = request.query.get("names")
    names = expand(pattern) if pattern else sorted(inv.nodes)
    return web.json_response([record_json(ops.get(inv.nodes, n, "node")) for n in names])


@routes.get("/api/v1/nodes/{name}")
async def get_node(request: web.Request) -> web.Response:
    ctx = context_of(request)
    inv = await ctx.run(ctx.actions.inventory)
    name = request.match_info["name"]
    node = ops.get(inv.nodes, name, "node")
    eff = inv.effective(name)
    data = record_json(node)
    data["effective"] = eff.settings.model_dump(mode="json", exclude_defaults=True)
    data["origins"] = {k: ",".join(v) for k, v in eff.origins.items()}
    return web.json_response(data)


@routes.post("/api/v1/nodes")
async def add_nodes(request: web.Request) -> web.Response:
    ctx = context_of(request)
    data = await body(request)
    nodes = await ctx.run(
        ctx.actions.add_nodes,
        names_of(data.get("names")),
        data.get("data") or {},
        mac=data.get("mac"),
        ip=data.get("ip"),
    )
    return web.json_response([record_json(n) for n in nodes], status=201)


@routes.patch("/api/v1/nodes")
async def set_nodes(request: web.Request) -> web.Response:
    ctx = context_of(request)
    data = await body(request)
    nodes = await ctx.run(
        ctx.actions.set_nodes,
        names_of(data.get("names")),
        data.get("changes") or {},
        mac=data.get("mac"),
        ip=data.get("ip"),
    )
    return web.json_response([record_json(n) for n in nodes])


@routes.delete("/api/v1/nodes")
async def delete_nodes(request: web.Request) -> web.Response:
    ctx = context_of(request)
    names = names_of((await body(request)).get("names"))
    await ctx.run(ctx.actions.delete_nodes, names)
    return web.json_response({"deleted": names})


@routes.post("/api/v1/apply")
async def apply(request: web.Request) -> web.Response:
    ctx = context_of(request)
    data = await body(request)
    cluster = Cluster.model_validate(data.get("cluster") or {})
    plan = await ctx.run(
        ctx.actions.apply, cluster, bool(data.get("prune")), bool(data.get("dry_run"))
    )
    changes = [
        {"action": c.action, "kind": c.kind, "name": c.name, "fields": list(c.fields)}
        for c in plan.changes
    ]
    return web.json_response({"changes": changes, "settings_changed": plan.settings_changed})


@routes.get("/api/v1/discovered")
async def discovered(request: web.Request) -> web.Response:
    ctx = context_of(request)
    return web.json_response(await ctx.run(ctx.actions.discovered))


@routes.post("/api/v1/discovered/adopt")
async def adopt(request: web.Request) -> web.Response:
    ctx = context_of(request)
    data = await body(request)
    mac, name = data.get("mac"), data.get("name")
    if not isinstance(mac, str) or not isinstance(name, str):
        raise InventoryError("adopt needs 'mac' and 'name'")
    node = await ctx.run(ctx.actions.adopt, mac, name, data.get("profiles"))
    return web.json_response(record_json(node))


@routes.get("/api/v1/leases")
async def leases(request: web.Request) -> web.Response:
    """DHCP leases (reserved and dynamic), with expiry times."""
    ctx = context_of(request)
    return web.json_response(await ctx.run(list_leases, ctx.corral.store))


__all__ = ["public_dict", "routes"]
