"""The node-settings flags shared by `profile add|set` and `node add|set`.

Help texts come from the inventory model's field descriptions, so the CLI,
the file format and the API schema describe a field in one place.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from typing import Any, TypeVar

import click
from pydantic import BaseModel

from corral.inventory.errors import InventoryError
from corral.inventory.models import NodeSettings, PowerSettings

F = TypeVar("F", bound=Callable[..., Any])


def describe(model: type[BaseModel], name: str) -> str:
    return model.model_fields[name].description or name


def csv(value: str | None) -> list[str] | None:
    return None if value is None else [v.strip() for v in value.split(",") if v.strip()]


_OPTIONS: list[tuple[tuple[str, ...], dict[str, Any]]] = [
    (("--image",), {"help": describe(NodeSettings, "image")}),
    (
        ("--boot",),
        {
            "type": click.Choice(["stateless", "stateful", "service"]),
            "help": describe(NodeSettings, "boot"),
        },
    ),
    (("--kernel-args",), {"help": "Kernel arguments, one string (replaces this record's own)"}),
    (("--overlays",), {"help": "Overlays, comma separated (replaces this record's own)"}),
    (("--network", "networks"), {"help": "Networks, comma separated; the first is primary"}),
    (("--power-driver",), {"help": describe(PowerSettings, "driver")}),
    (("--bmc-address",), {"help": describe(PowerSettings, "address")}),
    (("--bmc-username",), {"help": describe(PowerSettings, "username")}),
    (("--bmc-password",), {"help": "BMC password (stored, never shown or exported)"}),
    (("--bmc-slot",), {"type": int, "help": describe(PowerSettings, "slot")}),
    (("--tag", "tags"), {"multiple": True, "help": "KEY=VALUE tag (repeatable; KEY= removes)"}),
]


def settings_options(func: F) -> F:
    for decls, kwargs in reversed(_OPTIONS):
        func = click.option(*decls, default=None, **kwargs)(func)
    return func


def settings_changes(params: dict[str, Any]) -> dict[str, Any]:
    """The model changes that the given flags ask for (unset flags change nothing)."""
    changes: dict[str, Any] = {}
    for key in ("image", "boot"):
        if params.get(key) is not None:
            changes[key] = params[key] or None
    if params.get("kernel_args") is not None:
        try:
            changes["kernel_args"] = shlex.split(params["kernel_args"])
        except ValueError as exc:
            raise InventoryError(f"--kernel-args: {exc}") from None
    for key in ("overlays", "networks"):
        if params.get(key) is not None:
            changes[key] = csv(params[key])
    power = {
        field: params[flag]
        for flag, field in (
            ("power_driver", "driver"),
            ("bmc_address", "address"),
            ("bmc_username", "username"),
            ("bmc_password", "password"),
            ("bmc_slot", "slot"),
        )
        if params.get(flag) is not None
    }
    if power:
        changes["power"] = power
    if params.get("tags"):
        changes["tags"] = parse_tags(params["tags"])
    return changes


def parse_tags(items: tuple[str, ...]) -> dict[str, str | None]:
    """`KEY=VALUE` sets a tag, `KEY=` removes it (None in the patch)."""
    tags: dict[str, str | None] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InventoryError(f"--tag {item!r}: expected KEY=VALUE")
        tags[key] = value or None
    return tags
