"""Request bodies: the models routes declare (`routing.accepts`), and reading them
bounded, strict, and with a 400 for anything malformed.

aiohttp's `request.json()` decodes with whatever charset the client names and
hands the text to `json.loads`: a body that is not UTF-8 or JSON nested a
hundred thousand deep raised inside the handler and answered 500. Here the
size is checked before reading, the bytes are decoded as UTF-8, the nesting is
bounded before parsing, and every failure is an `InventoryError` (400).
"""

from __future__ import annotations

import json
import re
from itertools import accumulate
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, RootModel

from corral.inventory.errors import InventoryError
from corral.inventory.models import Cluster
from corral.services.http.names import NAMES, Names

M = TypeVar("M", bound=BaseModel)
SMALL_BODY = 64 * 1024  # every request body of the small admin routes fits
MAX_DEPTH = 64  # the deepest real body (a cluster file) nests about 8 levels
# SQLite and PostgreSQL integers are signed 64-bit: a larger cursor cannot be bound
MAX_INT = 2**63 - 1
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_BRACKET = re.compile(r"[\[\]{}]")


def check_depth(text: str, limit: int = MAX_DEPTH) -> None:
    """Refuse JSON nested deeper than `limit`, before the recursive parser sees it."""
    brackets = _BRACKET.findall(_STRING.sub("", text))
    steps = accumulate(1 if b in "[{" else -1 for b in brackets)
    if max(steps, default=0) > limit:
        raise InventoryError(f"request body nests deeper than {limit} levels")


async def read_json(request: web.Request, limit: int | None = None) -> Any:
    """The request body as JSON; 400 (`InventoryError`) if too big or malformed."""
    if limit is not None and (request.content_length or 0) > limit:
        raise InventoryError(f"request body is larger than {limit} bytes")
    raw = await request.read()
    if limit is not None and len(raw) > limit:
        raise InventoryError(f"request body is larger than {limit} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InventoryError(
            f"request body is not UTF-8: {exc.reason} at byte {exc.start}"
        ) from None
    check_depth(text)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InventoryError(f"request body is not valid JSON: {exc}") from None
    except RecursionError:  # check_depth keeps this out of reach; a last line
        raise InventoryError("request body nests too deep") from None


async def json_object(request: web.Request, limit: int | None = None) -> dict[str, Any]:
    data = await read_json(request, limit)
    if not isinstance(data, dict):
        raise InventoryError("request body must be a JSON object")
    return data


def int_query(request: web.Request, key: str, default: int, low: int, high: int) -> int:
    """Query parameter `key` as an integer in [low, high] (400 if it is not a number)."""
    text = request.query.get(key)
    if text is None or text == "":
        return default
    return bounded_int(text, key, low, high)


def bounded_int(text: str, what: str, low: int, high: int) -> int:
    """`text` as an integer clamped to [low, high]; only its form can be wrong (400)."""
    digits = text.strip().removeprefix("-")
    if not digits.isascii() or not digits.isdigit():
        raise InventoryError(f"{what} {text[:30]!r} is not a number")
    if len(digits) > 19:  # past any 64-bit value: no need to convert 4,000 digits
        return low if text.strip().startswith("-") else high
    return min(max(int(text), low), high)


# --- the request models of the REST API that are not inventory records themselves ---


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RecordChanges(RootModel[dict[str, Any]]):
    """Fields of a network or profile to change, as in the cluster file."""


class NodesAdd(Request):
    names: Names = Field(description=NAMES)
    data: dict[str, Any] = Field(default_factory=dict, description="Node fields (profiles, ...)")
    mac: str | None = Field(None, description="MAC of the (single) new node's interface")
    ip: str | None = Field(None, description="Address of the (single) new node's interface")


class NodesChange(Request):
    names: Names = Field(description=NAMES)
    changes: dict[str, Any] = Field(default_factory=dict, description="Node fields to change")
    mac: str | None = None
    ip: str | None = None


class NodesDelete(Request):
    names: Names = Field(description=NAMES)


class NodesService(Request):
    names: Names = Field(description=NAMES)
    on: bool = Field(True, description="Boot into the rescue environment (false: no more)")


class ApplyRequest(Request):
    cluster: Cluster = Field(default_factory=Cluster, description="The desired cluster")
    prune: bool = Field(False, description="Delete records the file does not name")
    dry_run: bool = Field(False, description="Only say what would change")


class AdoptRequest(Request):
    mac: str
    name: str
    profiles: list[str] | None = None


class EnrollCodeRequest(Request):
    minutes: int = Field(60, ge=1, le=7 * 24 * 60, description="How long the code is good for")
