"""`RemoteActions`: the `Actions` interface over a corral server's REST API.

Errors come back as the same exception types the local backend raises, so the
CLI prints the same one-line messages whichever backend it used.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from corral.inventory.errors import Conflict, InventoryError, NotFound
from corral.inventory.hostlists import compress
from corral.inventory.index import Inventory
from corral.inventory.models import Cluster, Network, Node, Profile
from corral.inventory.plan import Change, Plan

Data = dict[str, Any]
_BY_STATUS: dict[int, type[InventoryError]] = {400: InventoryError, 404: NotFound, 409: Conflict}


class ClientError(RuntimeError):
    """The server could not be reached or refused the token."""


class RemoteActions:
    def __init__(self, server: str, token: str | None, timeout: float = 30.0) -> None:
        self.base = server.rstrip("/") + "/api/v1"
        self.token = token
        self.timeout = timeout

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method)  # noqa: S310
        req.add_header("Content-Type", "application/json")
        if self.token:
            req.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:  # noqa: S310
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            raise self._error(exc) from None
        except (urllib.error.URLError, OSError) as exc:
            raise ClientError(f"cannot reach corral server {self.base}: {exc}") from None
        return json.loads(raw) if raw else None

    @staticmethod
    def _error(exc: urllib.error.HTTPError) -> Exception:
        try:
            message = json.loads(exc.read()).get("error", exc.reason)
        except ValueError:
            message = exc.reason
        if exc.code == 401:
            return ClientError(f"the server refused the token: {message} (pass --token)")
        return _BY_STATUS.get(exc.code, InventoryError)(message)

    def inventory(self) -> Inventory:
        return Inventory.from_cluster(Cluster.model_validate(self._call("GET", "/inventory")))

    def add_network(self, data: Data) -> Network:
        return Network.model_validate(self._call("POST", "/networks", data))

    def set_network(self, name: str, changes: Data) -> Network:
        return Network.model_validate(self._call("PATCH", f"/networks/{name}", changes))

    def delete_network(self, name: str) -> None:
        self._call("DELETE", f"/networks/{name}")

    def add_profile(self, data: Data) -> Profile:
        return Profile.model_validate(self._call("POST", "/profiles", data))

    def set_profile(self, name: str, changes: Data) -> Profile:
        return Profile.model_validate(self._call("PATCH", f"/profiles/{name}", changes))

    def delete_profile(self, name: str) -> None:
        self._call("DELETE", f"/profiles/{name}")

    def add_nodes(
        self, names: list[str], data: Data, mac: str | None = None, ip: str | None = None
    ) -> list[Node]:
        body = {"names": names, "data": data, "mac": mac, "ip": ip}
        return [Node.model_validate(n) for n in self._call("POST", "/nodes", body)]

    def set_nodes(
        self, names: list[str], changes: Data, mac: str | None = None, ip: str | None = None
    ) -> list[Node]:
        body = {"names": names, "changes": changes, "mac": mac, "ip": ip}
        return [Node.model_validate(n) for n in self._call("PATCH", "/nodes", body)]

    def delete_nodes(self, names: list[str]) -> None:
        self._call("DELETE", "/nodes", {"names": names})

    def apply(self, desired: Cluster, prune: bool = False, dry_run: bool = False) -> Plan:
        cluster = desired.model_dump(mode="json", exclude_defaults=True, context={"secrets": True})
        body = {"cluster": cluster, "prune": prune, "dry_run": dry_run}
        reply = self._call("POST", "/apply", body)
        changes = [
            Change(c["action"], c["kind"], c["name"], tuple(c["fields"])) for c in reply["changes"]
        ]
        return Plan(changes=changes, settings_changed=reply["settings_changed"])

    def discovered(self) -> list[Data]:
        result: list[Data] = self._call("GET", "/discovered")
        return result

    def adopt(self, mac: str, name: str, profiles: list[str] | None = None) -> Node:
        body = {"mac": mac, "name": name, "profiles": profiles}
        return Node.model_validate(self._call("POST", "/discovered/adopt", body))

    def status(self, names: list[str] | None = None) -> list[Data]:
        query = "?" + urllib.parse.urlencode({"names": compress(names)}) if names else ""
        result: list[Data] = self._call("GET", f"/status{query}")
        return result

    def events(self, since: int = 0, limit: int = 1000) -> list[Data]:
        query = urllib.parse.urlencode({"format": "json", "since": since, "limit": limit})
        result: list[Data] = self._call("GET", f"/events?{query}")
        return result
