"""Soft power control of a running node over ssh: power off and reboot.

ssh cannot power a node on, and an unreachable node may be off or just
unreachable, so `status` says on (ssh answered) or unknown. Keys only
(BatchMode): a password would have to be typed or put on a command line.
With `known_hosts` (e.g. corral's own, `$CORRAL_HOME/ssh/known_hosts`, which
`corral ssh` writes from the nodes' overlay host keys) host keys are checked
strictly against that file; without it, a new host key is accepted once.
"""

from __future__ import annotations

import asyncio
import shlex

from corral.power.base import Capability, PowerDriver, PowerState, Setting
from corral.power.errors import FinalError, RetryableError

SSH_UNREACHABLE = 255


class SshDriver(PowerDriver):
    name = "ssh"
    capabilities = frozenset(
        {Capability.OFF, Capability.SOFT_OFF, Capability.RESET, Capability.STATUS}
    )
    settings = (
        Setting("address", "host name or address of the running node", required=True),
        Setting("username", "login user", default="root"),
        Setting("port", "ssh port", default="22"),
        Setting("identity_file", "private key file (ssh -i)"),
        Setting("known_hosts", "known_hosts file: host keys checked strictly against it"),
        Setting("poweroff_command", "command that powers the node off", default="poweroff"),
        Setting("reboot_command", "command that reboots the node", default="reboot"),
        Setting("ssh", "path of the ssh program", default="ssh"),
        Setting("timeout", "connect timeout, seconds", default="5"),
    )

    last_error = ""

    def argv(self, command: str) -> list[str]:
        c = self.config
        key = c.get("identity_file")
        known = c.get("known_hosts")
        hosts = (
            ("-o", f"UserKnownHostsFile={known}", "-o", "StrictHostKeyChecking=yes")
            if known
            else ("-o", "StrictHostKeyChecking=accept-new")
        )
        return [
            c.need("ssh"),
            *("-o", "BatchMode=yes", "-o", f"ConnectTimeout={int(c.number('timeout'))}"),
            *hosts,
            *("-p", c.need("port")),
            *(("-i", key) if key else ()),
            *("-l", c.need("username"), c.need("address"), "--"),
            *shlex.split(command),
        ]

    async def run(self, command: str) -> int:
        """Run `command` on the node; ssh's exit code (255: could not connect)."""
        try:
            proc = await asyncio.create_subprocess_exec(
                *self.argv(command),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
            )
        except FileNotFoundError:
            raise FinalError("ssh is not installed") from None
        _, err = await proc.communicate()
        lines = err.decode(errors="replace").strip().splitlines()
        self.last_error = lines[-1] if lines else ""
        return proc.returncode or 0

    async def _status(self) -> PowerState:
        return PowerState.ON if await self.run("true") == 0 else PowerState.UNKNOWN

    async def _command(self, setting: str) -> None:
        code = await self.run(self.config.need(setting))
        if code == SSH_UNREACHABLE and "host key verification failed" in self.last_error.lower():
            known = self.config.get("known_hosts") or "known_hosts"
            raise FinalError(
                f"node {self.config.node}: its ssh host key is not the one in {known}: "
                "refusing to send it commands"
            )
        # the node may drop the connection while going down: 255 after a start is fine,
        # but 255 with "Connection refused"/"timed out" means we never got in
        if code == SSH_UNREACHABLE and _never_connected(self.last_error):
            raise RetryableError(f"node {self.config.node}: ssh: {self.last_error}")
        if code not in (0, SSH_UNREACHABLE):
            raise FinalError(f"node {self.config.node}: {setting} exited {code}")

    async def _off(self) -> None:
        await self._command("poweroff_command")

    async def _soft_off(self) -> None:
        await self._command("poweroff_command")

    async def _reset(self) -> None:
        await self._command("reboot_command")


def _never_connected(message: str) -> bool:
    low = message.lower()
    words = ("refused", "timed out", "no route", "could not resolve", "permission denied")
    return any(w in low for w in words)
