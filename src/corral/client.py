"""`RemoteActions`: the `Actions` interface over a corral server's REST API.

Errors come back as the same exception types the local backend raises, so the
CLI prints the same one-line messages whichever backend it used.

The pydantic models are imported by the methods that build them: calls that
return plain data (`nodes`, `status`, `events`) load neither pydantic nor the
inventory models, so `corral --server URL node list` starts fast.
"""

from __future__ import annotations

import dataclasses
import json
import urllib.parse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from corral.inventory.errors import Conflict, InventoryError, NotFound
from corral.inventory.hostlists import compress, expand

if TYPE_CHECKING:  # imported where used: most commands need none of them (start-up time)
    import ssl
    import urllib.error

    from corral.discovery.switches import Switch
    from corral.images.records import Image
    from corral.inventory.index import Inventory
    from corral.inventory.models import Cluster, Network, Node, Profile
    from corral.inventory.plan import Plan
    from corral.inventory.types import Data
    from corral.power.run import PowerResult

POWER_TIMEOUT = 3600.0
_BY_STATUS: dict[int, type[InventoryError]] = {400: InventoryError, 404: NotFound, 409: Conflict}


class ClientError(RuntimeError):
    """The server could not be reached or refused the token."""


def tls_context(ca: Path | None) -> ssl.SSLContext:
    """Verify https:// servers against `ca` (the cluster CA), else the system's trust store."""
    import ssl

    if ca is None:
        return ssl.create_default_context()
    if not ca.is_file():
        raise ClientError(
            f"CA certificate {ca} not found: copy the server's CORRAL_HOME/pki/ca.pem "
            "here, or give --ca / CORRAL_CA"
        )
    return ssl.create_default_context(cafile=str(ca))


class RemoteActions:
    def __init__(
        self, server: str, token: str | None, timeout: float = 30.0, ca: Path | None = None
    ) -> None:
        self.base = server.rstrip("/") + "/api/v1"
        self.token = token
        self.timeout = timeout
        self.ca = ca
        self._tls: ssl.SSLContext | None = None

    def _call(self, method: str, path: str, body: Any = None, timeout: float | None = None) -> Any:
        import ssl  # here, not at the top: a local command never loads them (start-up time)
        import urllib.error
        import urllib.request

        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method)  # noqa: S310
        req.add_header("Content-Type", "application/json")
        if self.token:
            req.add_header("Authorization", f"Bearer {self.token}")
        try:
            context = self._context() if self.base.startswith("https://") else None
            opened = urllib.request.urlopen(  # noqa: S310
                req, timeout=timeout or self.timeout, context=context
            )
            with opened as resp:
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            raise self._error(exc) from None
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, ssl.SSLCertVerificationError):
                trusted = self.ca or "the system's trust store"
                raise ClientError(
                    f"the certificate of {self.base} is not trusted ({exc.reason.verify_message})"
                    f" by {trusted}: give the cluster CA with --ca or CORRAL_CA"
                ) from None
            raise ClientError(f"cannot reach corral server {self.base}: {exc}") from None
        except OSError as exc:
            raise ClientError(f"cannot reach corral server {self.base}: {exc}") from None
        return json.loads(raw) if raw else None

    def _context(self) -> ssl.SSLContext:
        if self._tls is None:
            self._tls = tls_context(self.ca)
        return self._tls

    @staticmethod
    def _error(exc: urllib.error.HTTPError) -> Exception:
        try:
            message = json.loads(exc.read()).get("error", exc.reason)
        except ValueError:
            message = exc.reason
        if exc.code == 401:
            return ClientError(
                f"the server refused the token: {message} (set CORRAL_TOKEN or --token-file)"
            )
        if exc.code == 403:
            return ClientError(f"the server refused the call: {message}")
        return _BY_STATUS.get(exc.code, InventoryError)(message)

    def inventory(self) -> Inventory:
        from corral.inventory.index import Inventory
        from corral.inventory.models import Cluster

        return Inventory.from_cluster(Cluster.model_validate(self._call("GET", "/inventory")))

    def add_network(self, data: Data) -> Network:
        from corral.inventory.models import Network

        return Network.model_validate(self._call("POST", "/networks", data))

    def set_network(self, name: str, changes: Data) -> Network:
        from corral.inventory.models import Network

        return Network.model_validate(self._call("PATCH", f"/networks/{name}", changes))

    def delete_network(self, name: str) -> None:
        self._call("DELETE", f"/networks/{name}")

    def add_profile(self, data: Data) -> Profile:
        from corral.inventory.models import Profile

        return Profile.model_validate(self._call("POST", "/profiles", data))

    def set_profile(self, name: str, changes: Data) -> Profile:
        from corral.inventory.models import Profile

        return Profile.model_validate(self._call("PATCH", f"/profiles/{name}", changes))

    def delete_profile(self, name: str) -> None:
        self._call("DELETE", f"/profiles/{name}")

    def add_nodes(
        self, names: list[str], data: Data, mac: str | None = None, ip: str | None = None
    ) -> list[Node]:
        from corral.inventory.models import Node

        body = {"names": names, "data": data, "mac": mac, "ip": ip}
        return [Node.model_validate(n) for n in self._call("POST", "/nodes", body)]

    def set_nodes(
        self, names: list[str], changes: Data, mac: str | None = None, ip: str | None = None
    ) -> list[Node]:
        from corral.inventory.models import Node

        body = {"names": names, "changes": changes, "mac": mac, "ip": ip}
        return [Node.model_validate(n) for n in self._call("PATCH", "/nodes", body)]

    def delete_nodes(self, names: list[str]) -> None:
        self._call("DELETE", "/nodes", {"names": names})

    def nodes(self, names: list[str] | None = None, effective: bool = False) -> list[Data]:
        params = {"names": in_order(names)} if names else {}
        if effective:
            params["effective"] = "1"
        query = "?" + urllib.parse.urlencode(params) if params else ""
        result: list[Data] = self._call("GET", f"/nodes{query}")
        return result

    def apply(self, desired: Cluster, prune: bool = False, dry_run: bool = False) -> Plan:
        cluster = desired.model_dump(mode="json", exclude_defaults=True, context={"secrets": True})
        body = {"cluster": cluster, "prune": prune, "dry_run": dry_run}
        reply = self._call("POST", "/apply", body)
        from corral.inventory.plan import Change, Plan

        changes = [
            Change(c["action"], c["kind"], c["name"], tuple(c["fields"])) for c in reply["changes"]
        ]
        return Plan(changes=changes, settings_changed=reply["settings_changed"])

    def discovered(self) -> list[Data]:
        result: list[Data] = self._call("GET", "/discovered")
        return result

    def adopt(self, mac: str, name: str, profiles: list[str] | None = None) -> Node:
        from corral.inventory.models import Node

        body = {"mac": mac, "name": name, "profiles": profiles}
        return Node.model_validate(self._call("POST", "/discovered/adopt", body))

    def status(self, names: list[str] | None = None) -> list[Data]:
        query = "?" + urllib.parse.urlencode({"names": in_order(names)}) if names else ""
        result: list[Data] = self._call("GET", f"/status{query}")
        return result

    def events(self, since: int = 0, limit: int = 1000) -> list[Data]:
        query = urllib.parse.urlencode({"format": "json", "since": since, "limit": limit})
        result: list[Data] = self._call("GET", f"/events?{query}")
        return result

    def find_events(
        self,
        after: int = 0,
        limit: int = 1000,
        nodes: list[str] | None = None,
        kinds: list[str] | None = None,
        start: float | None = None,
        newest: bool = False,
    ) -> list[Data]:
        params: dict[str, Any] = {"format": "json", "since": after, "limit": limit}
        if nodes is not None:
            params["names"] = compress(nodes)
        if kinds is not None:
            params["kind"] = ",".join(kinds)
        if start is not None:
            params["start"] = repr(start)
        if newest:
            params["newest"] = "1"
        result: list[Data] = self._call("GET", f"/events?{urllib.parse.urlencode(params)}")
        return result

    def power(self, names: list[str], action: str, concurrency: int) -> list[PowerResult]:
        body = {"names": compress(names), "concurrency": concurrency}
        # the server waits for every BMC (a cycle can take minutes at low concurrency)
        reply = self._call("POST", f"/power/{action}", body, timeout=POWER_TIMEOUT)
        from corral.power.run import PowerResult

        fields = {f.name for f in dataclasses.fields(PowerResult)}
        return [PowerResult(**{k: v for k, v in r.items() if k in fields}) for r in reply]

    def switches(self) -> list[Switch]:
        from corral.discovery.switches import Switch

        return [Switch.model_validate(s) for s in self._call("GET", "/switches")]

    def add_switch(self, switch: Switch) -> Switch:
        from corral.discovery.switches import Switch

        body = switch.model_dump(mode="json", exclude_defaults=True, context={"secrets": True})
        return Switch.model_validate(self._call("POST", "/switches", body))

    def map_switch(self, name: str, ports: str, nodes: str) -> Switch:
        from corral.discovery.switches import Switch

        body = {"ports": ports, "nodes": nodes}
        return Switch.model_validate(self._call("POST", f"/switches/{_seg(name)}/ports", body))

    def delete_switch(self, name: str) -> None:
        self._call("DELETE", f"/switches/{_seg(name)}")

    def images(self) -> list[Image]:
        from corral.images.records import Image

        return [Image.model_validate(i) for i in self._call("GET", "/images")]

    def create_token(self, name: str, role: str) -> str:
        reply = self._call("POST", "/tokens", {"name": name, "role": role})
        return str(reply["token"])

    def tokens(self) -> list[Data]:
        result: list[Data] = self._call("GET", "/tokens")
        return result

    def revoke_token(self, name: str) -> None:
        self._call("DELETE", f"/tokens/{_seg(name)}")

    def exec_start(self, names: list[str], command: str, timeout: float) -> Data:
        body = {"names": compress(names), "command": command, "timeout": timeout}
        result: Data = self._call("POST", "/exec", body)
        return result

    def exec_job(self, job: int, wait: float = 0.0) -> Data:
        query = urllib.parse.urlencode({"wait": wait})
        result: Data = self._call("GET", f"/exec/{job}?{query}")
        return result

    def facts(self, names: list[str] | None = None) -> list[Data]:
        query = "?" + urllib.parse.urlencode({"names": in_order(names)}) if names else ""
        result: list[Data] = self._call("GET", f"/facts{query}")
        return result

    def enroll_code(self, minutes: int = 60) -> Data:
        result: Data = self._call("POST", "/enroll-codes", {"minutes": minutes})
        return result

    def reinstall(self, names: list[str]) -> list[str]:
        result: list[str] = self._call("POST", "/nodes/reinstall", {"names": names})["nodes"]
        return result

    def service_mode(self, names: list[str], on: bool = True) -> list[str]:
        body = {"names": names, "on": on}
        result: list[str] = self._call("POST", "/nodes/service", body)["nodes"]
        return result


def in_order(names: list[str]) -> str:
    """A hostlist that expands to `names` in their order (the server answers in it).

    `compress` sorts: `n2,n1` would come back as n1, n2 where the local
    backend keeps the order given. Names out of order are sent as a comma list.
    """
    short = compress(names)
    return short if expand(short) == names else ",".join(names)


def _seg(name: str) -> str:
    """`name` as one path segment."""
    return urllib.parse.quote(name, safe="")
