"""The node-settings flags shared by `profile add|set` and `node add|set`.

Help texts come from the inventory model's field descriptions, so the CLI,
the file format and the API schema describe a field in one place. They are
read when help is shown (`FieldHelp`), so that defining `node add` does not
import the models that `node list` has no use for.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from corral.inventory.errors import InventoryError

if TYPE_CHECKING:
    from pydantic import BaseModel

F = TypeVar("F", bound=Callable[..., Any])


def describe(model: type[BaseModel], name: str) -> str:
    return model.model_fields[name].description or name


class FieldHelp(click.Option):
    """An option whose help is the description of `field` (model, field name) of
    `corral.inventory.models`, looked up the first time anything reads it."""

    _help: str | None = None

    def __init__(self, *args: Any, field: tuple[str, str], **kwargs: Any) -> None:
        self.field = field
        super().__init__(*args, **kwargs)

    @property
    def help(self) -> str | None:
        if self._help is None:
            from corral.inventory import models

            self._help = describe(getattr(models, self.field[0]), self.field[1])
        return self._help

    @help.setter
    def help(self, value: str | None) -> None:
        self._help = value


def _field(model: str, name: str) -> dict[str, Any]:
    return {"cls": FieldHelp, "field": (model, name)}


def csv(value: str | None) -> list[str] | None:
    return None if value is None else [v.strip() for v in value.split(",") if v.strip()]


_OPTIONS: list[tuple[tuple[str, ...], dict[str, Any]]] = [
    (("--image",), _field("NodeSettings", "image")),
    (
        ("--boot",),
        {
            "type": click.Choice(["stateless", "stateful", "service"]),
            **_field("NodeSettings", "boot"),
        },
    ),
    (("--kernel-args",), {"help": "Kernel arguments, one string (replaces this record's own)"}),
    (
        ("--overlays",),
        {
            "help": "Overlays, comma separated (replaces this record's own, and the default "
            "`system` set: list system to keep it and the node agent)"
        },
    ),
    (("--network", "networks"), {"help": "Networks, comma separated; the first is primary"}),
    (("--power-driver",), _field("PowerSettings", "driver")),
    (("--bmc-address",), _field("PowerSettings", "address")),
    (("--bmc-username",), _field("PowerSettings", "username")),
    (
        ("--bmc-password-file",),
        {
            "metavar": "FILE",
            "help": "Read the BMC password from FILE ('-': standard input); stored sealed, "
            "never shown or exported",
        },
    ),
    (
        ("--bmc-password-env",),
        {"metavar": "VAR", "help": "Read the BMC password from environment variable VAR"},
    ),
    (
        ("--bmc-password-prompt",),
        {"is_flag": True, "help": "Ask for the BMC password (not echoed)"},
    ),
    # refused: a password in argv is readable by every local user through ps
    (("--bmc-password",), {"hidden": True, "expose_value": True}),
    (("--bmc-slot",), {"type": int, **_field("PowerSettings", "slot")}),
    (("--tag", "tags"), {"multiple": True, "help": "KEY=VALUE tag (repeatable; KEY= removes)"}),
]


ARGV_REFUSED = (
    "--bmc-password puts the password on the command line, where ps shows it to every "
    "local user: use --bmc-password-file FILE, --bmc-password-env VAR or --bmc-password-prompt"
)


def settings_options(func: F) -> F:
    for decls, kwargs in reversed(_OPTIONS):
        default = False if kwargs.get("is_flag") else None
        func = click.option(*decls, default=default, **kwargs)(func)
    return func


def bmc_password(params: dict[str, Any]) -> str | None:
    """The BMC password from a file, the environment or a prompt; never from argv."""
    if params.get("bmc_password") is not None:
        raise click.UsageError(ARGV_REFUSED)
    given = [k for k in ("bmc_password_file", "bmc_password_env") if params.get(k)]
    given += ["bmc_password_prompt"] if params.get("bmc_password_prompt") else []
    if len(given) > 1:
        raise click.UsageError("give the BMC password one way: a file, a variable or the prompt")
    if params.get("bmc_password_file"):
        return _read_password(params["bmc_password_file"])
    if params.get("bmc_password_env"):
        name = params["bmc_password_env"]
        if name not in os.environ:
            raise InventoryError(f"--bmc-password-env: environment variable {name} is not set")
        return os.environ[name]
    if params.get("bmc_password_prompt"):
        return str(click.prompt("BMC password", hide_input=True, confirmation_prompt=True))
    return None


def _read_password(path: str) -> str:
    try:
        with click.open_file(path, "r") as fh:
            text = str(fh.read(4096))
    except OSError as exc:
        raise InventoryError(f"--bmc-password-file: {exc.strerror}: {path}") from None
    password = text.splitlines()[0] if text else ""
    if not password:
        raise InventoryError(f"--bmc-password-file: {path} is empty")
    return password


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
            ("bmc_slot", "slot"),
        )
        if params.get(flag) is not None
    }
    password = bmc_password(params)
    if password is not None:
        power["password"] = password
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
