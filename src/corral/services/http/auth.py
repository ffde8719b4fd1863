"""Who may call the admin API: bearer tokens with roles, and an audit event per change.

The admin token in CORRAL_HOME/admin.token is the `admin` token; named tokens
(`corral token create NAME --role R`) are checked against their stored hashes;
the Slurm power token (a cluster secret, docs/slurm.md) is the `operator` token
`slurm-power`.
Roles nest (read-only < operator < admin): reading needs read-only, power
needs operator, every other change and token management need admin.
Every call that may change something is recorded as an `api` event naming the
token, whatever its answer. Node routes prove the node with `nodeauth` instead.
"""

from __future__ import annotations

import hmac
import time
from dataclasses import dataclass

from aiohttp import web

from corral.overlays.clustersecrets import SLURM_POWER_NAME, SLURM_POWER_TOKEN, ClusterSecrets
from corral.services.http.context import HttpContext, context_of
from corral.services.http.errors import Handler, json_error
from corral.store.audit import record_action
from corral.store.tokens import ADMIN_NAME, Role, find_token

# Node routes: no admin token, the handler asks `nodeauth.node_caller` instead.
NODE_PREFIXES = ("/api/v1/boot/",)
PUBLIC_PREFIXES = (*NODE_PREFIXES, "/api/v1/openapi.json")
OPERATOR_PREFIXES = ("/api/v1/power/",)  # console has no route: it runs on the server
ADMIN_PREFIXES = ("/api/v1/tokens",)
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
MAX_TOKEN = 256  # longer than any token corral makes: not worth hashing


@dataclass(frozen=True)
class ApiCaller:
    """The token a request came with: its name and role."""

    name: str
    role: Role


def is_admin_path(path: str) -> bool:
    return path.startswith("/api/v1/") and not path.startswith(PUBLIC_PREFIXES)


def needed_role(method: str, path: str) -> Role:
    """The least role that may make this call."""
    if path.startswith(ADMIN_PREFIXES):
        return Role.ADMIN
    if path.startswith(OPERATOR_PREFIXES):
        return Role.OPERATOR
    return Role.READ_ONLY if method in READ_METHODS else Role.ADMIN


def bearer(request: web.Request) -> str | None:
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    given = given.strip()
    if scheme.lower() != "bearer" or not given or len(given) > MAX_TOKEN:
        return None
    return given


def lookup(ctx: HttpContext, given: str) -> ApiCaller | None:
    """The caller holding token `given`, or None."""
    if hmac.compare_digest(given.encode(), ctx.token.encode()):
        return ApiCaller(ADMIN_NAME, Role.ADMIN)
    with ctx.corral.store.transaction() as conn:
        found = find_token(conn, given, time.time())
    if found is not None:
        return ApiCaller(*found)
    return slurm_power_caller(ctx, given)


def slurm_power_caller(ctx: HttpContext, given: str) -> ApiCaller | None:
    """The Slurm power token (a cluster secret the slurm overlay gives the controller)."""
    vault = ClusterSecrets(ctx.corral.settings.paths.home / "secrets")
    kept = vault.existing(SLURM_POWER_TOKEN)
    if kept is None or not hmac.compare_digest(given.encode(), kept.encode()):
        return None
    return ApiCaller(SLURM_POWER_NAME, Role.OPERATOR)


def audit(ctx: HttpContext, caller: ApiCaller, request: web.Request, status: int) -> None:
    with ctx.corral.store.transaction() as conn:
        record_action(
            conn, time.time(), caller.name, caller.role, request.method, request.path, status
        )


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not is_admin_path(request.path):
        return await handler(request)
    ctx = context_of(request)
    given = bearer(request)
    caller = None if given is None else await ctx.run(lookup, ctx, given)
    if caller is None:
        return json_error(401, "API token missing or wrong (Authorization: Bearer TOKEN)")
    needed = needed_role(request.method, request.path)
    status = 500  # unless the handler answers
    try:
        if not caller.role.allows(needed):
            response: web.StreamResponse = json_error(
                403, f"token {caller.name} has role {caller.role}; this call needs {needed}"
            )
        else:
            response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        if request.method not in READ_METHODS:
            await ctx.run(audit, ctx, caller, request, status)


async def is_admin(request: web.Request) -> bool:
    """Whether the request carries a token with the admin role (Authorization: Bearer)."""
    given = bearer(request)
    if given is None:
        return False
    ctx = context_of(request)
    caller = await ctx.run(lookup, ctx, given)
    return caller is not None and caller.role.allows(Role.ADMIN)
