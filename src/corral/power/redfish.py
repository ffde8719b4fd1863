"""Redfish (DMTF) BMCs through sushy, the OpenStack Redfish client.

Power changes land late on real hardware (and 1-11 s late in sushy-tools), so
`on`/`off` wait for the reported state with a bounded poll. One service
connection is shared by every node of a run that names the same base URL and
user: a chassis manager or an emulator serves many systems, and connecting
once instead of per node is most of the cost of `corral power status`.
sushy is synchronous; its calls run in the runner's thread pool.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable
from typing import Any, TypeVar

import sushy  # type: ignore[import-untyped]
from sushy import exceptions as sushy_errors
from sushy.auth import AuthBase, BasicAuth, SessionOrBasicAuth  # type: ignore[import-untyped]

from corral.power.base import (
    ALL_POWER,
    Capability,
    Console,
    PowerDriver,
    PowerState,
    Setting,
    run_blocking,
)
from corral.power.errors import FinalError, NotSupported, RetryableError, SettingsError

T = TypeVar("T")
STATES = {
    sushy.PowerState.ON: PowerState.ON,
    sushy.PowerState.OFF: PowerState.OFF,
    sushy.PowerState.POWERING_OFF: PowerState.ON,
    sushy.PowerState.POWERING_ON: PowerState.OFF,
}


class NoAuth(AuthBase):  # type: ignore[misc]
    """No credentials: for services that need none (emulators, a BMC on loopback)."""

    def _do_authenticate(self) -> None:
        pass

    def can_refresh_session(self) -> bool:
        return False


class RedfishDriver(PowerDriver):
    name = "redfish"
    capabilities = ALL_POWER | {
        Capability.SOFT_OFF,
        Capability.RESET,
        Capability.BOOT_NETWORK,
        Capability.CONSOLE,
    }
    settings = (
        Setting("address", "base URL of the Redfish service, e.g. https://bmc", required=True),
        Setting("username", "Redfish user"),
        Setting("password", "Redfish password", secret=True),
        Setting("system_id", "system Id or path (default: the service's only system)"),
        Setting("verify_tls", "check the BMC's TLS certificate (true/false)", default="true"),
        Setting("auth", "basic or session", default="basic"),
        Setting("timeout", "seconds to wait for one HTTP answer", default="20"),
    )

    # connection ------------------------------------------------------------------

    def _key(self) -> tuple[str, ...]:
        c = self.config
        return ("redfish", c.need("address"), c.get("username") or "", c.get("password") or "")

    def connect(self) -> sushy.Sushy:
        """A new service connection (blocking)."""
        c = self.config
        user, password = c.get("username"), c.get("password")
        if user is None:
            auth: AuthBase = NoAuth()
        elif c.get("auth") == "session":
            auth = SessionOrBasicAuth(user, password)
        else:
            auth = BasicAuth(user, password)
        return sushy.Sushy(
            c.need("address"),
            auth=auth,
            verify=c.flag("verify_tls"),
            read_timeout=int(c.number("timeout")),
            connect_timeout=int(c.number("timeout")),
            server_side_retries=0,
        )

    async def service(self) -> sushy.Sushy:
        """The run's shared connection for this base URL and user."""
        rt, key = self.runtime, self._key()
        async with rt.lock(key):
            conn = rt.shared.get(key)
            if conn is None:
                conn = await self._call(self.connect)
                rt.shared[key] = conn
        return conn

    async def system(self) -> Any:
        conn = await self.service()
        return await self._call(lambda: conn.get_system(self._system_path(conn)))

    def _system_path(self, conn: sushy.Sushy) -> str:
        wanted = self.config.get("system_id")
        if wanted and wanted.startswith("/"):
            return wanted
        if wanted:
            return f"{self._collection_path(conn).rstrip('/')}/{wanted}"
        collection = conn.get_system_collection()
        members = list(collection.members_identities)
        if len(members) != 1:
            raise SettingsError(
                f"node {self.config.node}: the service has {len(members)} systems: "
                "set the power option system_id"
            )
        return str(members[0])

    def _collection_path(self, conn: sushy.Sushy) -> str:
        """The Systems collection's path, looked up once per service (benign race)."""
        key = (*self._key(), "systems")
        path = self.runtime.shared.get(key)
        if path is None:
            path = self.runtime.shared[key] = conn.get_system_collection().path
        return str(path)

    async def _call(self, func: Callable[[], T]) -> T:
        try:
            return await run_blocking(func)
        except sushy_errors.AccessError:
            raise FinalError(f"node {self.config.node}: Redfish refused the credentials") from None
        except sushy_errors.ResourceNotFoundError as exc:
            raise FinalError(f"node {self.config.node}: not found: {exc}") from None
        except sushy_errors.BadRequestError as exc:
            raise FinalError(f"node {self.config.node}: refused: {exc}") from None
        except (sushy_errors.ConnectionError, sushy_errors.HTTPError) as exc:
            raise RetryableError(f"node {self.config.node}: {exc}") from None
        except sushy_errors.SushyError as exc:
            raise FinalError(f"node {self.config.node}: {exc}") from None

    # power -------------------------------------------------------------------------

    async def _status(self) -> PowerState:
        system = await self.system()
        return STATES.get(system.power_state, PowerState.UNKNOWN)

    async def _reset_type(self, kind: sushy.ResetType) -> None:
        system = await self.system()
        await self._call(lambda: system.reset_system(kind))

    async def _on(self) -> None:
        await self._reset_type(sushy.ResetType.ON)
        await self.wait_for(PowerState.ON)

    async def _off(self) -> None:
        await self._reset_type(sushy.ResetType.FORCE_OFF)
        await self.wait_for(PowerState.OFF)

    async def _soft_off(self) -> None:
        await self._reset_type(sushy.ResetType.GRACEFUL_SHUTDOWN)

    async def _reset(self) -> None:
        await self._reset_type(sushy.ResetType.FORCE_RESTART)

    async def _boot_network_once(self) -> None:
        system = await self.system()
        await self._call(
            lambda: system.set_system_boot_options(
                sushy.BootSource.PXE, enabled=sushy.BootSourceOverrideEnabled.ONCE
            )
        )

    # console -------------------------------------------------------------------------

    def _console(self) -> Console:
        conn = self.connect()
        system = conn.get_system(self._system_path(conn))
        serial = (system.json or {}).get("SerialConsole") or {}
        host = urllib.parse.urlsplit(self.config.need("address")).hostname or ""
        user = self.config.get("username") or "root"
        ssh = serial.get("SSH") or {}
        if ssh.get("ServiceEnabled"):
            port = str(ssh.get("Port") or 22)
            return Console(
                argv=("ssh", "-p", port, f"{user}@{host}"),
                description="Redfish serial console over SSH (the BMC asks for the password)",
            )
        ipmi = serial.get("IPMI") or {}
        if ipmi.get("ServiceEnabled"):
            from corral.power.ipmi import IpmiDriver

            values = {**self.config.values, "address": f"{host}:{ipmi.get('Port') or 623}"}
            cfg = type(self.config)(self.config.node, _ipmi_values(values), self.config.secrets)
            return IpmiDriver(cfg, self.runtime).console()
        raise NotSupported(f"node {self.config.node}: the Redfish system offers no serial console")


def _ipmi_values(values: dict[str, str]) -> dict[str, str]:
    from corral.power.ipmi import IpmiDriver

    defaults = {s.name: s.default for s in IpmiDriver.settings if s.default is not None}
    keep = {k: v for k, v in values.items() if k in ("address", "username", "password")}
    return {**defaults, **keep}
