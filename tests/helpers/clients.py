"""Real DHCP clients and process helpers shared by the integration tests.

busybox udhcpc and ISC dhclient run inside a client namespace with a hook
script that records the environment of the lease they got.
"""

from __future__ import annotations

import shlex
import subprocess
import time
from pathlib import Path

from corral.lab.netns import Topology, ns_argv


def wait_for(path: Path, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.stat().st_size > 0:
            return True
        if proc is not None and proc.poll() is not None:
            return False
        time.sleep(0.05)
    return False


def stop(proc: subprocess.Popen[bytes], *, sig_kill: bool = False) -> None:
    if proc.poll() is None:
        proc.kill() if sig_kill else proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def env_file(path: Path) -> dict[str, str]:
    env: dict[str, str] = {}
    for line in path.read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep:
            env[key] = value.strip("'")
    return env


def recording_script(tmp: Path, name: str, out: Path, when: str) -> Path:
    """A client hook script that saves its environment when `when` is true."""
    script = tmp / name
    target = shlex.quote(str(out))
    script.write_text(
        f"#!/bin/sh\nif {when}; then env > {target}.tmp && mv {target}.tmp {target}; fi\nexit 0\n"
    )
    script.chmod(0o755)
    return script


def run_udhcpc(ns: str, tmp: Path, tag: str) -> dict[str, str]:
    """One busybox udhcpc run (-q: quit once bound, no release); its `bound` env."""
    env, output = try_udhcpc(ns, tmp, tag)
    assert env is not None, f"udhcpc got no lease:\n{output}"
    return env


def try_udhcpc(ns: str, tmp: Path, tag: str) -> tuple[dict[str, str] | None, str]:
    """One busybox udhcpc run: (its `bound` env, or None when it got no lease; its output)."""
    out = tmp / f"udhcpc-{tag}.env"
    script = recording_script(tmp, f"udhcpc-{tag}.sh", out, '[ "$1" = bound ]')
    argv = ["udhcpc", "-i", "eth0", "-f", "-q", "-n", "-T", "3", "-t", "3", "-s", str(script)]
    proc = subprocess.Popen(ns_argv(ns, argv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        output, _ = proc.communicate(timeout=30)
    finally:
        stop(proc, sig_kill=True)
    text = output.decode(errors="replace")
    return (env_file(out) if out.exists() else None), text


def run_dhclient(ns: str, tmp: Path) -> dict[str, str]:
    """ISC dhclient in the foreground until its script sees BOUND; then killed."""
    out = tmp / "dhclient.env"
    script = recording_script(tmp, "dhclient.sh", out, '[ "$reason" = BOUND ]')
    conf = tmp / "dhclient.conf"
    conf.write_text("timeout 20;\nretry 1;\n")
    argv = [
        "dhclient", "-1", "-d", "-v",
        "-lf", str(tmp / "dhclient.leases"), "-pf", str(tmp / "dhclient.pid"),
        "-cf", str(conf), "-sf", str(script), "eth0",
    ]  # fmt: skip
    log = (tmp / "dhclient.log").open("wb")
    proc = subprocess.Popen(ns_argv(ns, argv), stdout=log, stderr=subprocess.STDOUT)
    try:
        got = wait_for(out, 30, proc)
    finally:
        stop(proc, sig_kill=True)
        log.close()
    assert got, f"dhclient got no lease:\n{(tmp / 'dhclient.log').read_text()}"
    return env_file(out)


def bridge_lab(topo: Topology, *macs: str) -> tuple[str, list[str]]:
    srv = topo.namespace("srv")
    topo.bridge(srv, "br0", "10.77.0.1/24")
    clients = []
    for i, mac in enumerate(macs):
        ns = topo.namespace(f"c{i}")
        topo.attach(ns, srv, "br0", mac=mac)
        clients.append(ns)
    return srv, clients


def wait_for_text(
    path: Path,
    text: str,
    timeout: float,
    proc: subprocess.Popen[bytes] | None = None,
    *,
    after: int = 0,
) -> bool:
    """Wait until `text` appears in the file at `path` (a log), past byte `after`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and text.encode() in path.read_bytes()[after:]:
            return True
        if proc is not None and proc.poll() is not None:
            return False
        time.sleep(0.1)
    return False
