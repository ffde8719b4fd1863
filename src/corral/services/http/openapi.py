"""The OpenAPI document, derived from the routes the application really has.

Nothing here is listed by hand: paths and methods come from the router, each
request body from the model its handler declares with `routing.accepts` (the
same model `routing.parsed` validates with), and who may call from the path:
admin token under `/api/v1/`, node credential under `/api/v1/boot/`, nobody
for the firmware's `/boot/` and `/artifacts/`. A path parameter written as an
alternation (`{kind:networks|profiles}`) becomes one concrete path per value.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from aiohttp import web
from pydantic import BaseModel

from corral import __version__
from corral.services.http.auth import NODE_PREFIXES, is_admin_path
from corral.services.http.limits import declared_limit
from corral.services.http.routing import Body, body_of

REF = "#/components/schemas/{model}"
ALTERNATION = re.compile(r"\{(\w+):([\w.|/-]+)\}")
GROUP = re.compile(r"\(\?P<(\w+)>([^()]*)\)")
LITERALS = re.compile(r"[\w.|/-]+")
PARAMETER = re.compile(r"\{(\w+)(?::[^}]*)?\}")
Data = dict[str, Any]


def concrete_paths(path: str) -> list[tuple[str, dict[str, str]]]:
    """`/a/{kind:x|y}/{name}` -> [(`/a/x/{name}`, {kind: x}), (`/a/y/{name}`, {kind: y})]."""
    found = ALTERNATION.search(path)
    if found is None:
        return [(PARAMETER.sub(r"{\1}", path), {})]
    key, values = found.group(1), found.group(2).split("|")
    out = []
    for value in values:
        for rest, fixed in concrete_paths(path[: found.start()] + value + path[found.end() :]):
            out.append((rest, {key: value, **fixed}))
    return out


def _security(path: str) -> tuple[list[Data] | None, str | None]:
    if path.startswith(NODE_PREFIXES):
        return [{"node": []}], "node credential missing or not current"
    if is_admin_path(path):
        return [{"admin": []}], "admin token missing or wrong"
    return None, None


RAW_BODY = {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}


def _operation(
    method: str, path: str, fixed: dict[str, str], body: Body | None, raw_limit: int | None
) -> Data:
    op: Data = {"responses": {"200": {"description": "OK"}}}
    security, refusal = _security(path)
    if security:
        op["security"] = security
        op["responses"]["401"] = {"description": refusal}
    params = PARAMETER.findall(path)
    if params:
        op["parameters"] = [
            {"name": p, "in": "path", "required": True, "schema": {"type": "string"}}
            for p in params
        ]
    if body is not None:
        model = body.models[fixed.get(body.key, "") if body.key else ""]
        content = {"application/json": {"schema": {"$ref": REF.format(model=model.__name__)}}}
        op["requestBody"] = {"required": True, "content": content}
        if body.description:
            op["requestBody"]["description"] = body.description
        op["responses"]["400"] = {"description": "the body does not match its schema"}
        if body.limit:
            op["responses"]["413"] = {"description": f"body over {body.limit} bytes"}
    elif raw_limit is not None:  # a raw body (a script's output), bounded by `body_limit`
        op["requestBody"] = {"required": False, "content": RAW_BODY}
        op["responses"]["413"] = {"description": f"body over {raw_limit} bytes"}
    return op


def _schemas(models: list[type[BaseModel]]) -> Data:
    out: Data = {}
    for model in sorted(set(models), key=lambda m: m.__name__):
        schema = model.model_json_schema(ref_template=REF)
        out.update(schema.pop("$defs", {}))
        out[model.__name__] = schema
    return out


def route_template(info: Mapping[str, Any]) -> str | None:
    """A route's path as written at registration: `{kind:a|b}` kept, other regexes dropped."""
    if "path" in info:
        return str(info["path"])
    formatter = info.get("formatter")
    pattern = info.get("pattern")
    if formatter is None or pattern is None:
        return None
    for name, regex in GROUP.findall(pattern.pattern):
        if "|" in regex and LITERALS.fullmatch(regex):
            formatter = formatter.replace(f"{{{name}}}", f"{{{name}:{regex}}}")
    return str(formatter)


def route_table(app: web.Application) -> list[tuple[str, str, Body | None, int | None]]:
    """(method, router path, declared JSON body, declared raw body limit) of every route,
    HEAD and `*` left out."""
    out = []
    for route in app.router.routes():
        path = route_template(route.resource.get_info() if route.resource else {})
        method = route.method.lower()
        if path and method not in ("head", "*"):
            out.append((method, path, body_of(route.handler), declared_limit(route.handler)))
    return out


def openapi_document(app: web.Application) -> Data:
    paths: dict[str, Data] = {}
    models: list[type[BaseModel]] = []
    for method, path, body, raw_limit in route_table(app):
        for concrete, fixed in concrete_paths(path):
            op = _operation(method, concrete, fixed, body, raw_limit)
            paths.setdefault(concrete, {})[method] = op
        if body is not None:
            models.extend(body.models.values())
    return {
        "openapi": "3.1.0",
        "info": {"title": "corral", "version": __version__},
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": _schemas(models),
            "securitySchemes": {
                "admin": {"type": "http", "scheme": "bearer", "description": "admin token"},
                "node": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "node credential (POST /api/v1/boot/self/credential: "
                    "the boot token)",
                },
            },
        },
    }


routes = web.RouteTableDef()


@routes.get("/api/v1/openapi.json")
async def openapi(request: web.Request) -> web.Response:
    return web.json_response(openapi_document(request.app))
