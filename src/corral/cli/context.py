"""What every command receives: the local application and the actions backend."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from corral.actions import Actions, LocalActions
from corral.app import Corral
from corral.client import RemoteActions


@dataclass
class CliContext:
    app: Corral
    server: str | None = None
    token: str | None = None

    @cached_property
    def actions(self) -> Actions:
        """Local database, or the REST API of `--server`."""
        if self.server is None:
            return LocalActions(self.app)
        token = self.token or self.app.admin_token()
        return RemoteActions(self.server, token)
