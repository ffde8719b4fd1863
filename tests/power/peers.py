"""Real BMC peers for the power tests and the benchmark: ipmi_sim, sushy-tools, QEMU.

Each launcher is a context manager that keeps the Popen handle and kills the
process in `finally`, pass or fail. Ports are found by binding port 0.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

VENV_BIN = Path(sys.executable).parent


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise TimeoutError(f"{what} did not come up in {timeout} s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=10)


# ipmi_sim ---------------------------------------------------------------------------

CHASSIS_SCRIPT = """#!/bin/sh
# ipmi_sim chassis control: `get power ...` answers power:N, `set power N` stores it
state="{state}"
cmd=$1; shift
if [ "$cmd" = get ]; then
  for p in "$@"; do
    case $p in power) echo "power:$(cat "$state" 2>/dev/null || echo 0)";; esac
  done
else
  while [ $# -gt 1 ]; do
    case $1 in
      power) echo "$2" > "$state";;
      reset) echo "reset" >> "$state.log";;
      boot) echo "boot $2" >> "$state.log";;
      shutdown) echo 0 > "$state";;
    esac
    shift 2
  done
fi
"""

LAN_CONF = """name "corral-test"
set_working_mc 0x20
  startlan 1
    addr 127.0.0.1 {port}
    priv_limit admin
    allowed_auths_callback none md2 md5 straight
    allowed_auths_user none md2 md5 straight
    allowed_auths_operator none md2 md5 straight
    allowed_auths_admin none md2 md5 straight
    guid a123456789abcdefa123456789abcdef
  endlan
  chassis_control "{script}"
  user 2 true "{user}" "{password}" admin 10 none md2 md5 straight
"""

EMU = (
    "mc_setbmc 0x20\n"
    "mc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr\n"
    "mc_enable 0x20\n"
)


@dataclass
class IpmiBmc:
    address: str
    user: str
    password: str
    state: Path

    def ipmitool(self, *args: str) -> str:
        """ipmitool's own view, run independently of the driver under test."""
        host, port = self.address.split(":")
        argv = [
            "ipmitool",
            "-I",
            "lanplus",
            "-C",
            "3",
            "-N",
            "1",
            "-R",
            "2",
            "-H",
            host,
            "-p",
            port,
        ]
        argv += ["-U", self.user, "-E", *args]
        env = {**os.environ, "IPMI_PASSWORD": self.password}
        done = subprocess.run(
            argv, check=False, env=env, capture_output=True, text=True, timeout=20
        )
        return done.stdout + done.stderr


@contextlib.contextmanager
def ipmi_sim(
    workdir: Path, user: str = "admin", password: str = "s3cret-pass"
) -> Iterator[IpmiBmc]:
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port(socket.SOCK_DGRAM)
    state = workdir / "power"
    script = workdir / "chassis.sh"
    script.write_text(CHASSIS_SCRIPT.format(state=state))
    script.chmod(0o755)
    conf = workdir / "lan.conf"
    conf.write_text(LAN_CONF.format(port=port, script=script, user=user, password=password))
    (workdir / "cmds.emu").write_text(EMU)
    (workdir / "state").mkdir(exist_ok=True)
    argv = ["ipmi_sim", "-c", str(conf), "-f", str(workdir / "cmds.emu")]
    argv += ["-s", str(workdir / "state"), "-n"]
    log = (workdir / "ipmi_sim.log").open("wb")
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    try:
        bmc = IpmiBmc(f"127.0.0.1:{port}", user, password, state)
        wait_until(
            lambda: "Chassis Power" in bmc.ipmitool("chassis", "power", "status"), 20, "ipmi_sim"
        )
        yield bmc
    finally:
        stop(proc)
        log.close()


# sushy-tools ------------------------------------------------------------------------


def fake_systems(count: int, prefix: str = "") -> list[dict[str, object]]:
    return [
        {
            "uuid": f"{prefix}{i:08x}-0000-4000-8000-{i:012x}",
            "name": f"fake{prefix}{i}",
            "power_state": "Off",
            "external_notifier": False,
            "nics": [{"mac": f"52:54:00:{i >> 16 & 255:02x}:{i >> 8 & 255:02x}:{i & 255:02x}"}],
        }
        for i in range(count)
    ]


@contextlib.contextmanager
def sushy_emulator(workdir: Path, systems: list[dict[str, object]] | None = None) -> Iterator[str]:
    """`sushy-emulator --fake` on a loopback port; yields its base URL."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    conf = workdir / "emulator.conf"
    lines = [f"SUSHY_EMULATOR_STATE_DIR = {str(workdir / 'state')!r}"]
    if systems is not None:
        lines.append(f"SUSHY_EMULATOR_FAKE_SYSTEMS = {systems!r}")
    conf.write_text("\n".join(lines) + "\n")
    exe = shutil.which("sushy-emulator", path=str(VENV_BIN)) or "sushy-emulator"
    argv = [exe, "--fake", "-i", "127.0.0.1", "-p", str(port), "--config", str(conf)]
    log = (workdir / "sushy.log").open("wb")
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd=workdir)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _http_ok(f"{url}/redfish/v1/"), 30, "sushy-emulator")
        yield url
    finally:
        stop(proc)
        log.close()


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


# QEMU -----------------------------------------------------------------------------


@contextlib.contextmanager
def qemu_vm(workdir: Path) -> Iterator[tuple[Path, Path]]:
    """A diskless q35 VM held at start (-S); yields (QMP socket, serial socket).

    A second QMP monitor at `workdir/events.sock` lets a test watch QEMU's events
    (RESET, STOP, ...) while a driver uses the first."""
    workdir.mkdir(parents=True, exist_ok=True)
    qmp, serial = workdir / "qmp.sock", workdir / "serial.sock"
    argv = ["qemu-system-x86_64", "-accel", "tcg", "-machine", "q35", "-m", "64"]
    argv += ["-nographic", "-nodefaults", "-S", "-qmp", f"unix:{qmp},server,nowait"]
    argv += ["-qmp", f"unix:{workdir / 'events.sock'},server,nowait"]
    argv += ["-serial", f"unix:{serial},server,nowait", "-display", "none"]
    log = (workdir / "qemu.log").open("wb")
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    try:
        wait_until(lambda: qmp.exists() and serial.exists(), 30, "qemu")
        yield qmp, serial
    finally:
        stop(proc)
        log.close()
