"""net-snmp's snmpd as a switch: its MAC table served through a `pass` script.

The script answers snmpd's `-g OID` (get) and `-n OID` (get-next) from a JSON
table of OID -> (type, value) written by the test.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from tests.power.peers import free_port, stop

PASS_SCRIPT = """#!{python}
import json, sys
TABLE = json.load(open({table!r}))
def key(oid): return tuple(int(x) for x in oid.strip(".").split("."))
rows = sorted((key(o), o, t, v) for o, (t, v) in TABLE.items())
op, oid = sys.argv[1], key(sys.argv[2])
hit = None
if op == "-g":
    hit = next((r for r in rows if r[0] == oid), None)
elif op == "-n":
    hit = next((r for r in rows if r[0] > oid), None)
if hit:
    print("." + hit[1].strip(".")); print(hit[2]); print(hit[3])
"""

SUBTREES = (".1.3.6.1.2.1.17", ".1.3.6.1.2.1.31.1.1.1.1")


def mac_oid(mac: str) -> str:
    return ".".join(str(int(x, 16)) for x in mac.split(":"))


def fdb_table(
    dot1d: dict[str, int],
    dot1q: dict[tuple[int, str], int],
    if_index: dict[int, int],
    if_name: dict[int, str],
) -> dict[str, tuple[str, str]]:
    table: dict[str, tuple[str, str]] = {}
    for mac, port in dot1d.items():
        table[f"1.3.6.1.2.1.17.4.3.1.2.{mac_oid(mac)}"] = ("integer", str(port))
    for (vlan, mac), port in dot1q.items():
        table[f"1.3.6.1.2.1.17.7.1.2.2.1.2.{vlan}.{mac_oid(mac)}"] = ("integer", str(port))
    for bp, idx in if_index.items():
        table[f"1.3.6.1.2.1.17.1.4.1.2.{bp}"] = ("integer", str(idx))
    for idx, name in if_name.items():
        table[f"1.3.6.1.2.1.31.1.1.1.1.{idx}"] = ("string", name)
    return table


@contextlib.contextmanager
def snmpd(
    workdir: Path, table: dict[str, tuple[str, str]], community: str = "sw-secret"
) -> Iterator[int]:
    """snmpd on a loopback UDP port serving `table`; yields the port."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "table.json").write_text(json.dumps(table))
    script = workdir / "fdb.py"
    script.write_text(PASS_SCRIPT.format(python=sys.executable, table=str(workdir / "table.json")))
    script.chmod(0o755)
    port = free_port(2)  # SOCK_DGRAM
    conf = workdir / "snmpd.conf"
    lines = [f"rocommunity {community} 127.0.0.1"]
    lines += [f"pass -p 1 {tree} {script}" for tree in SUBTREES]
    conf.write_text("\n".join(lines) + "\n")
    env = {**os.environ, "SNMP_PERSISTENT_DIR": str(workdir / "persist"), "MIBS": ""}
    argv = ["snmpd", "-f", "-Lo", "-C", "-c", str(conf), f"udp:127.0.0.1:{port}"]
    log = (workdir / "snmpd.log").open("wb")
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env)
    try:
        _wait(port, community)
        yield port
    finally:
        stop(proc)
        log.close()


def _wait(port: int, community: str) -> None:
    argv = ["snmpget", "-v2c", "-c", community, "-t", "0.3", "-r", "0", f"127.0.0.1:{port}"]
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        done = subprocess.run([*argv, "1.3.6.1.2.1.1.1.0"], capture_output=True, check=False)
        if done.returncode == 0:
            return
        time.sleep(0.1)
    raise TimeoutError("snmpd did not answer")
