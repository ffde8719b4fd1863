"""The OpenAPI document, built from the routes and the inventory models.

Schemas come from the same pydantic models as the file format and the CLI
help, so the three cannot drift apart.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import BaseModel

from corral import __version__
from corral.inventory.models import Cluster, Network, Node, Profile

REF = "#/components/schemas/{model}"
MODELS: dict[str, type[BaseModel]] = {
    "Network": Network,
    "Profile": Profile,
    "Node": Node,
    "Cluster": Cluster,
}
_BODY = {
    ("post", "/api/v1/networks"): "Network",
    ("post", "/api/v1/profiles"): "Profile",
}


def _schemas() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, model in MODELS.items():
        schema = model.model_json_schema(ref_template=REF)
        out.update(schema.pop("$defs", {}))
        out[name] = schema
    return out


def _operation(method: str, path: str) -> dict[str, Any]:
    op: dict[str, Any] = {"responses": {"200": {"description": "OK"}}}
    if path.startswith("/api/v1/") and not path.startswith("/api/v1/boot/"):
        op["security"] = [{"bearer": []}]
        op["responses"]["401"] = {"description": "admin token missing or wrong"}
    params = [p.strip("{}").split(":")[0] for p in path.split("/") if p.startswith("{")]
    if params:
        op["parameters"] = [
            {"name": p, "in": "path", "required": True, "schema": {"type": "string"}}
            for p in params
        ]
    model = _BODY.get((method, path))
    if model:
        op["requestBody"] = {
            "content": {"application/json": {"schema": {"$ref": REF.format(model=model)}}}
        }
    return op


def openapi_document(app: web.Application) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter")
        method = route.method.lower()
        if not path or method in ("head", "*"):
            continue
        clean = "/".join(
            p.split(":")[0] + "}" if p.startswith("{") and ":" in p else p for p in path.split("/")
        )
        paths.setdefault(clean, {})[method] = _operation(method, clean)
    return {
        "openapi": "3.1.0",
        "info": {"title": "corral", "version": __version__},
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": _schemas(),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


routes = web.RouteTableDef()


@routes.get("/api/v1/openapi.json")
async def openapi(request: web.Request) -> web.Response:
    return web.json_response(openapi_document(request.app))
