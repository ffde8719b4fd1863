"""What every command receives: the actions backend, and this machine's CORRAL_HOME.

`--server URL` means one thing: drive that server. Commands go through
`actions` (local database, or the server's REST API); a command that can only
work on this machine's files asks for them with `local(...)`, which refuses
when `--server` is given, so no command silently works locally instead.

Nothing heavy is imported until a command asks: with `--server`, the database
library and the application never load (`corral node list` then starts in a
fraction of the time; tests/cli/test_lazy_cli.py checks it).
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

if TYPE_CHECKING:
    from corral.actions import Actions
    from corral.app import Corral


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
