"""Who is calling: the one place that decides which node a request comes from.

A node proves who it is with its **node credential**, never with its address:
a host that takes a node's IP (the node is off, or ARP-spoofed) has no
credential, so it gets nothing private and cannot report the node's state.
The credential comes from the **boot token** that the node's iPXE script
carries on the kernel command line (`corral.token=`): the initramfs spends it
once, first thing, here:

    POST /api/v1/boot/self/credential[?format=sh]   Authorization: Bearer <boot token>
        -> {"node", "credential", "server_url"}     (a second use: 403 and an alarm event)

Every later node call sends `Authorization: Bearer <node credential>`, and
its handler asks `caller = await node_caller(request)`: that answers the
`Caller` or raises 401 (no or unknown credential) / 403 (a node acting as
another). docs/security.md has the threat model.
"""

from __future__ import annotations

import ipaddress
import json
import shlex
import time
from dataclasses import dataclass

from aiohttp import web

from corral.inventory.types import check_mac_or_error
from corral.services.http.context import HttpContext, context_of
from corral.services.http.events import publish
from corral.store.credentials import Refused, Spent, credential_holder, spend_boot_token
from corral.store.status import record_state

routes = web.RouteTableDef()
MAX_SECRET = 256  # longer than any token corral makes: refused before hashing


@dataclass(frozen=True)
class Caller:
    """The node behind a request, as its credential says (ip: where it calls from now)."""

    node: str
    ip: str
    mac: str | None


CALLER = web.RequestKey("corral.caller", Caller)


def _json_body(message: str) -> str:
    return json.dumps({"error": message})


class NotThisNode(web.HTTPForbidden):
    """The caller is a node, but not the one it asks about (HTTP 403)."""

    def __init__(self, message: str) -> None:
        super().__init__(text=_json_body(message), content_type="application/json")
        self.message = message


class NoCredential(web.HTTPUnauthorized):
    """The caller sent no credential, or one that is nobody's (HTTP 401)."""

    def __init__(self, message: str) -> None:
        super().__init__(
            text=_json_body(message),
            content_type="application/json",
            headers={"WWW-Authenticate": 'Bearer realm="corral-node"'},
        )
        self.message = message


def source_ip(request: web.Request) -> str:
    return normal_ip(request.remote)


def normal_ip(remote: str | None) -> str:
    """An address as the inventory writes it: an IPv4-mapped IPv6 address as IPv4."""
    remote = remote or ""
    try:
        address = ipaddress.ip_address(remote)
    except ValueError:
        return remote
    mapped = getattr(address, "ipv4_mapped", None)
    return str(mapped or address)


def bearer(request: web.Request) -> str | None:
    """The secret in `Authorization: Bearer ...`, if there is a plausible one."""
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    value = value.strip()
    if scheme.lower() != "bearer" or not value or len(value) > MAX_SECRET:
        return None
    return value


def _holder(ctx: HttpContext, secret: str) -> tuple[str, str | None] | None:
    with ctx.corral.store.transaction() as conn:
        holder = credential_holder(conn, secret)
    return None if holder is None else (holder.node, holder.mac)


async def node_caller(request: web.Request) -> Caller:
    """The node that sent `request`, proven by its credential.

    A `{name}` in the path must be `self` or the caller's own name; a `mac`
    query parameter, if given, must be the caller's MAC.

    :raises NoCredential: no credential, or not a current one (401).
    :raises NotThisNode: the caller asks about another node or MAC (403).
    :raises InventoryError: the `mac` parameter is not a MAC address (400).
    """
    cached = request.get(CALLER)
    if isinstance(cached, Caller):
        return cached
    secret = bearer(request)
    if secret is None:
        raise NoCredential(
            "this call needs the node credential (Authorization: Bearer <credential>)"
        )
    ctx = context_of(request)
    found = await ctx.run(_holder, ctx, secret)
    if found is None:
        raise NoCredential("unknown node credential: it was replaced by a later boot, or never")
    node, mac = found
    asked = request.match_info.get("name", "self")
    if asked not in ("self", node):
        raise NotThisNode(f"you are {node}: a node may only act as itself, not {asked}")
    given = request.query.get("mac")
    if given and mac and check_mac_or_error(given) != mac:
        raise NotThisNode(f"you are {node}, whose MAC is not {given}")
    caller = Caller(node, source_ip(request), mac)
    request[CALLER] = caller
    return caller


# --- spending the boot token ---------------------------------------------------------------


Outcome = tuple[Spent | Refused, dict[str, object] | None]


def spend(ctx: HttpContext, token: str, ip: str) -> Outcome:
    """Spend a boot token; a spent token starts the node's boot (`pxe`)."""
    now = time.time()
    with ctx.corral.store.transaction() as conn:
        result = spend_boot_token(conn, token, ip, now)
        if isinstance(result, Refused):
            return result, result.event
        recorded = record_state(conn, result.node, "pxe", now, ip=ip, mac=result.mac)
    return result, recorded.event


@routes.post("/api/v1/boot/self/credential")
async def post_credential(request: web.Request) -> web.Response:
    """Spend this boot's token (kernel argument `corral.token=`) for a node credential."""
    token = bearer(request)
    if token is None:
        raise NoCredential(
            "send this boot's token (kernel argument corral.token=) as Authorization: Bearer"
        )
    ctx = context_of(request)
    result, event = await ctx.run(spend, ctx, token, source_ip(request))
    publish(ctx, event)
    if isinstance(result, Refused):
        error = NoCredential if result.status == 401 else NotThisNode
        raise error(result.reason)
    answer = {"node": result.node, "credential": result.credential, "server_url": ctx.node_url}
    headers = {"Cache-Control": "no-store"}
    if request.query.get("format") == "sh":
        text = "".join(f"CORRAL_{k.upper()}={shlex.quote(v)}\n" for k, v in answer.items())
        return web.Response(text=text, headers=headers)
    return web.json_response(answer, headers=headers)
