"""REST API under /api/v1: networks, profiles, nodes, discovered machines, apply.

Each handler parses, calls the same `LocalActions` the CLI uses, and returns
JSON. Secrets are shown as `***`.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from corral.actions import inventory_data, node_data
from corral.inventory import ops
from corral.inventory.fileformat import public_dict
from corral.inventory.hostlists import expand
from corral.inventory.models import Network, Profile, Record
from corral.services.dhcp_store import list_leases
from corral.services.http.bodies import (
    AdoptRequest,
    ApplyRequest,
    NodesAdd,
    NodesChange,
    NodesDelete,
    RecordChanges,
)
from corral.services.http.context import context_of
from corral.services.http.limits import MiB, body_limit
from corral.services.http.names import names_list
from corral.services.http.routing import accepts, parsed
from corral.store.inventory import SECRETS

routes = web.RouteTableDef()
KINDS = {"networks": "network", "profiles": "profile"}


def record_json(record: Record) -> dict[str, Any]:
    return record.model_dump(mode="json", exclude_defaults=True)


def record_data(record: Record) -> dict[str, Any]:
    """A validated record as the actions take it: the fields the caller gave, secrets kept."""
    return record.model_dump(mode="json", exclude_unset=True, context=SECRETS)


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
@accepts({"networks": Network, "profiles": Profile}, key="kind")
async def add_record(request: web.Request) -> web.Response:
    ctx = context_of(request)
    kind = request.match_info["kind"]
    data = record_data(await parsed(request, Network if kind == "networks" else Profile))
    add = ctx.actions.add_network if kind == "networks" else ctx.actions.add_profile
    return web.json_response(record_json(await ctx.run(add, data)), status=201)


@routes.patch("/api/v1/{kind:networks|profiles}/{name}")
@accepts(RecordChanges)
async def set_record(request: web.Request) -> web.Response:
    ctx = context_of(request)
    data = (await parsed(request, RecordChanges)).root
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
    """`?names=HOSTLIST` picks nodes; `?effective=1` adds each one's merged settings."""
    ctx = context_of(request)
    pattern = request.query.get("names")
    names = expand(pattern) if pattern else None
    effective = request.query.get("effective") == "1"
    return web.json_response(await ctx.run(ctx.actions.nodes, names, effective))


@routes.get("/api/v1/nodes/{name}")
async def get_node(request: web.Request) -> web.Response:
    ctx = context_of(request)
    inv = await ctx.run(ctx.actions.inventory)
    name = request.match_info["name"]
    data = node_data(inv, name, effective=True)
    data["origins"] = {k: ",".join(v) for k, v in inv.effective(name).origins.items()}
    return web.json_response(data)


@routes.post("/api/v1/nodes")
@accepts(NodesAdd)
async def add_nodes(request: web.Request) -> web.Response:
    ctx = context_of(request)
    data = await parsed(request, NodesAdd)
    nodes = await ctx.run(
        ctx.actions.add_nodes, names_list(data.names), data.data, mac=data.mac, ip=data.ip
    )
    return web.json_response([record_json(n) for n in nodes], status=201)


@routes.patch("/api/v1/nodes")
@accepts(NodesChange)
async def set_nodes(request: web.Request) -> web.Response:
    ctx = context_of(request)
    data = await parsed(request, NodesChange)
    nodes = await ctx.run(
        ctx.actions.set_nodes, names_list(data.names), data.changes, mac=data.mac, ip=data.ip
    )
    return web.json_response([record_json(n) for n in nodes])


@routes.delete("/api/v1/nodes")
@accepts(NodesDelete)
async def delete_nodes(request: web.Request) -> web.Response:
    ctx = context_of(request)
    names = names_list((await parsed(request, NodesDelete)).names)
    await ctx.run(ctx.actions.delete_nodes, names)
    return web.json_response({"deleted": names})


@routes.post("/api/v1/apply")
@body_limit(256 * MiB)  # a 10,000-node cluster file fits comfortably
@accepts(ApplyRequest)
async def apply(request: web.Request) -> web.Response:
    ctx = context_of(request)
    data = await parsed(request, ApplyRequest)
    plan = await ctx.run(ctx.actions.apply, data.cluster, data.prune, data.dry_run)
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
@accepts(AdoptRequest)
async def adopt(request: web.Request) -> web.Response:
    ctx = context_of(request)
    data = await parsed(request, AdoptRequest)
    node = await ctx.run(ctx.actions.adopt, data.mac, data.name, data.profiles)
    return web.json_response(record_json(node))


@routes.get("/api/v1/leases")
async def leases(request: web.Request) -> web.Response:
    """DHCP leases (reserved and dynamic), with expiry times."""
    ctx = context_of(request)
    return web.json_response(await ctx.run(list_leases, ctx.corral.store))


__all__ = ["public_dict", "routes"]
