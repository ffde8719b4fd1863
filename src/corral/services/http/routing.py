"""A route's request body is declared once, on the route, and both validation and the
OpenAPI document read it from there.

    @routes.post("/api/v1/things")
    @accepts(Thing)                          # the body model: documented and enforced
    async def add_thing(request: web.Request) -> web.Response:
        thing = await parsed(request, Thing)  # bounded read, JSON, Thing.model_validate
        ...

A route whose path picks the record kind (`/api/v1/{kind:networks|profiles}`)
gives one model per value: `@accepts({"networks": Network, "profiles": Profile},
key="kind")`; the document then lists `/api/v1/networks` and `/api/v1/profiles`.
`parsed` refuses a model other than the declared one, so the two cannot drift.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel

from corral.services.http.bodies import read_json

M = TypeVar("M", bound=BaseModel)
F = TypeVar("F", bound=Callable[..., Any])
ATTRIBUTE = "__corral_body__"


@dataclass(frozen=True)
class Body:
    """What a route accepts: one model, or one per value of the path parameter `key`."""

    models: Mapping[str, type[BaseModel]]
    key: str | None
    limit: int | None
    description: str


def accepts(
    model: type[BaseModel] | Mapping[str, type[BaseModel]],
    *,
    key: str | None = None,
    limit: int | None = None,
    description: str = "",
) -> Callable[[F], F]:
    """Declare the handler's JSON body (see the module docstring); `limit` in bytes."""
    models = dict(model) if isinstance(model, Mapping) else {"": model}
    if (key is None) != (models.keys() == {""}):
        raise TypeError("accepts: a mapping of models needs key=, a single model must not")

    def mark(handler: F) -> F:
        setattr(handler, ATTRIBUTE, Body(models, key, limit, description))
        return handler

    return mark


def body_of(handler: Any) -> Body | None:
    """The body a handler declared with `accepts`, if any."""
    found = getattr(handler, ATTRIBUTE, None)
    return found if isinstance(found, Body) else None


def declared_model(request: web.Request) -> tuple[type[BaseModel], int | None]:
    body = body_of(request.match_info.route.handler)
    if body is None:
        raise TypeError(f"{request.path}: the handler declares no body (@accepts)")
    value = "" if body.key is None else request.match_info[body.key]
    return body.models[value], body.limit


async def parsed(request: web.Request, model: type[M]) -> M:
    """The request body, read within the route's limit and validated by its declared model.

    :raises TypeError: `model` is not the one the route declared (a programming error).
    """
    declared, limit = declared_model(request)
    if declared is not model:
        raise TypeError(f"{request.path}: parsed with {model.__name__}, declared {declared}")
    data = await read_json(request, limit)
    return model.model_validate(data)
