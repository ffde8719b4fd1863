"""What every command receives: the actions backend, and this machine's CORRAL_HOME.

`--server URL` means one thing: drive that server. Commands go through
`actions` (local database, or the server's REST API); a command that can only
work on this machine's files asks for them with `local(...)`, which refuses
when `--server` is given, so no command silently works locally instead.

Nothing heavy is imported until a command asks: with `--server`, the database
library and the application never load, nor do they for `corral node list` on a
local SQLite store (`nodes`); tests/cli/test_lazy_cli.py checks both.
"""

from __future__ import annotations

import getpass
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import click

from corral.client import ClientError, RemoteActions
from corral.config import Settings
from corral.store.files import admin_token
from corral.store.nodelist import read_node_list
from corral.store.secretbox import SecretBox

if TYPE_CHECKING:
    from corral.actions import Actions
    from corral.app import Corral
    from corral.inventory.types import Data


def user() -> str:
    """Who runs this command, for the audit trail (a uid when it has no name)."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return str(os.getuid())


class LocalOnly(ClientError):
    """A command that works on this machine's CORRAL_HOME was given --server."""


@dataclass
class CliContext:
    settings: Settings
    server: str | None = None
    token: str | None = None
    ca: Path | None = None  # the CA that signs --server's certificate (--ca, CORRAL_CA)

    @cached_property
    def home(self) -> Corral:
        """This machine's corral (its database opens on first use)."""
        from corral.app import Corral

        return Corral(self.settings)

    @cached_property
    def actions(self) -> Actions:
        """Local database, or the REST API of `--server`."""
        if self.server is None:
            from corral.actions import LocalActions

            return LocalActions(self.home, actor=f"local:{user()}")
        paths = self.settings.paths
        token = self.token or admin_token(paths.token)
        ca = self.ca
        if ca is None and (paths.pki / "ca.pem").is_file():
            ca = paths.pki / "ca.pem"
        return RemoteActions(self.server, token, ca=ca)

    def nodes(self, names: list[str] | None, effective: bool) -> list[Data]:
        """`Actions.nodes` for `corral node list`. On this machine's SQLite store it
        is read with the standard library (`corral.store.nodelist`) when that reader
        can answer, so the command starts without SQLAlchemy and the models; with
        `effective`, only the single-valued settings the table shows are merged."""
        if self.server is None:
            box = SecretBox(self.settings.secret_key_file)
            found = read_node_list(self.settings.database_url, names, effective, box)
            if found is not None:
                return found
        return self.actions.nodes(names, effective)

    def local(self, command: str | None = None) -> Corral:
        """This machine's corral, for `command` (default: the one running); refused with --server.

        :raises LocalOnly: --server was given.
        """
        if self.server is not None:
            command = command or " ".join(click.get_current_context().command_path.split()[1:])
            raise LocalOnly(
                f"'corral {command}' works on this machine's CORRAL_HOME, not through --server:"
                " run it on the server, without --server"
            )
        return self.home
