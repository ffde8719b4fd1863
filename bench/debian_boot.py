"""Benchmark: power-on to SSH-ready of the Debian `server` image in the lab, 1 and 4 VMs,
next to the busybox (tiny) image.

For each image and each N: a fresh CORRAL_HOME, `Lab.up` with N VMs (started
paused, so every VM starts at the same instant), then all are powered on at
once (time 0). A Debian node is SSH-ready at its first successful
`ssh root@IP true`, with the admin key and host keys checked strictly against
corral's known_hosts (the options `corral ssh` uses), run inside the lab's
namespace every 2 s. The busybox image has no sshd: its figure is power-on to
its init's `booted` report, the nearest thing it has. The state times (the
initramfs's `handover`, the agent's `ready`) come from the events.

CPU is sampled from /proc/stat every second while the VMs boot; TCG VMs spend
all the CPU they get, so a run whose busiest second hit 100% measured the
machine as much as corral, and is flagged `saturated` (not quotable). The
load average before the run says what else was running.

    .venv/bin/python bench/debian_boot.py [--nodes 1 4] [--images debian tiny] [--memory 1536]

One JSON object per run on stdout; a markdown table at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.e2e.debian import IMAGE, cached_tree

from corral.app import Corral
from corral.cli.ssh import cluster_known_hosts, ssh_argv
from corral.config import Settings
from corral.images import api
from corral.images.artifacts import pack_image
from corral.lab.accel import choose_accel
from corral.lab.image import prepare_image
from corral.lab.lab import SERVER_URL, Lab, LabOptions, LabState
from corral.lab.netns import ns_argv
from corral.overlays.adminkey import ensure_admin_key
from corral.power.run import Action, run_power, targets_for


class CpuSampler:
    """Busy fraction of all CPUs, one sample a second, in a thread."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def _times() -> tuple[int, int]:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
        idle = fields[3] + fields[4]  # idle + iowait
        return sum(fields), idle

    def _run(self) -> None:
        total, idle = self._times()
        while not self._stop.wait(1.0):
            t, i = self._times()
            if t > total:
                self.samples.append(1 - (i - idle) / (t - total))
            total, idle = t, i

    def __enter__(self) -> CpuSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def node_ip(corral: Corral, node: str) -> str:
    inv = corral.read()
    net = inv.primary_network(inv.nodes[node])
    iface = inv.nodes[node].interface_on(net.name) if net else None
    assert iface is not None and iface.ip is not None
    return str(iface.ip)


def ssh_ready(corral: Corral, state: LabState, node: str) -> bool:
    paths = corral.settings.paths
    known = cluster_known_hosts(corral, corral.read())
    argv = ssh_argv(str(paths.admin_ssh_key), str(known), node_ip(corral, node), ("true",))
    argv[1:1] = ["-o", "BatchMode=yes"]
    try:
        done = subprocess.run(
            ns_argv(state.netns, argv),
            capture_output=True,
            timeout=30,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return False
    return done.returncode == 0


def state_times(corral: Corral, node: str, since: float) -> dict[str, float]:
    from corral.actions import LocalActions

    out: dict[str, float] = {}
    for e in LocalActions(corral).events(0, 100000):
        if e["node"] == node and e["kind"] == "state" and e["time"] >= since:
            out.setdefault(e["data"]["state"], round(e["time"] - since, 1))
    return out


def prepare(corral: Corral, image: str) -> None:
    if image == "tiny":
        prepare_image(corral, "tiny", SERVER_URL)
        return
    api.import_image(corral, str(cached_tree()), IMAGE)
    pack_image(corral, IMAGE, SERVER_URL)


def one_run(image: str, nodes: int, memory: int, timeout: float) -> dict[str, Any]:
    home = Path(tempfile.mkdtemp(prefix="corral-bench-boot-"))
    corral = Corral(Settings.from_env({"CORRAL_HOME": str(home)}))
    try:
        prepare(corral, image)
        ensure_admin_key(corral.settings.paths)
        lab = Lab(corral)
        opts = LabOptions(
            nodes=nodes,
            memory_mb=memory if image != "tiny" else 256,
            image=IMAGE if image != "tiny" else "tiny",
            accel=choose_accel("tcg"),
        )
        load_before = os.getloadavg()[0]
        state = lab.up(opts)
        names = [vm.name for vm in state.vms]
        try:
            with CpuSampler() as cpu:
                t0 = time.time()
                asyncio.run(run_power(targets_for(corral.read(), names), Action.ON))
                ready = wait_all(corral, state, image, names, t0, timeout)
            times = {n: state_times(corral, n, t0) for n in names}
        finally:
            lab.down()
    finally:
        shutil.rmtree(home, ignore_errors=True)
    busiest = max(cpu.samples, default=0.0)
    return {
        "image": image,
        "nodes": nodes,
        "memory_mb": opts.memory_mb,
        "ready_s": ready,
        "all_ready_s": max((v for v in ready.values() if v is not None), default=None),
        "states": times,
        "load_before": round(load_before, 1),
        "cpu_mean": round(sum(cpu.samples) / max(1, len(cpu.samples)), 2),
        "cpu_busiest": round(busiest, 2),
        "saturated": busiest >= 0.99,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def wait_all(
    corral: Corral, state: LabState, image: str, names: list[str], t0: float, timeout: float
) -> dict[str, float | None]:
    """Seconds from power-on until each node is SSH-ready (tiny: reported booted)."""
    from corral.actions import LocalActions

    ready: dict[str, float | None] = dict.fromkeys(names)
    while time.time() - t0 < timeout and any(v is None for v in ready.values()):
        if image == "tiny":
            rows = LocalActions(corral).status(names)
            for row in rows:
                if ready[row["node"]] is None and row["state"] == "booted":
                    ready[row["node"]] = round(time.time() - t0, 1)
        else:
            for node in names:
                if ready[node] is None and ssh_ready(corral, state, node):
                    ready[node] = round(time.time() - t0, 1)
        time.sleep(2)
    return ready


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nodes", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--images", nargs="+", default=["debian", "tiny"])
    parser.add_argument("--memory", type=int, default=1536, help="MB per Debian VM")
    parser.add_argument("--timeout", type=float, default=1800)
    args = parser.parse_args()
    results = []
    for image in args.images:
        for n in args.nodes:
            result = one_run(image, n, args.memory, args.timeout)
            print(json.dumps(result), flush=True)
            results.append(result)
    print("\n| image | VMs | power-on to ready, each (s) | all (s) | load before | CPU busiest |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in results:
        each = ", ".join("-" if v is None else f"{v:.0f}" for v in r["ready_s"].values())
        flag = " (saturated)" if r["saturated"] else ""
        print(
            f"| {r['image']} | {r['nodes']} | {each} | {r['all_ready_s']} | "
            f"{r['load_before']} | {r['cpu_busiest']:.0%}{flag} |"
        )


if __name__ == "__main__":
    main()
