"""Boot-storm benchmark: N simulated nodes fetch one image, BitTorrent (corral) vs HTTP unicast.

    .venv/bin/python bench/provision/run.py --n 1 8 32 64 \
        --configs http corral:aria2c corral:fetch stock:lt [--repeat 3] \
        [--image-mib 8] [--node-mbit 2] [--server-mbit 20] [--label NAME] [server options...]

A configuration is `http` (HTTP unicast from the server) or `SERVER:CLIENT`:
SERVER `corral` is the tracker policy and seeder settings `corral serve` ships
(corral.services.serve), `stock` a plain libtorrent seed (libtorrent's default 8
upload slots) behind a tracker that hands out random peers; CLIENT `aria2c` runs
aria2c with the flags of the initramfs (corral/agent/init), `fetch` the
initramfs' libtorrent client (corral-fetch, --fetch-bin), `lt` libtorrent's
Python binding with its defaults (bench/provision/ltclient.py).

Each node is a network namespace with a veth to a switch namespace (Linux
bridge); the server is one more namespace on that bridge. Both ends of every
veth are shaped with HTB (node rate, or server rate for the server's link) and
a `bfifo limit 262144` leaf; MTU 9000; TCP reno in every namespace; permanent
neighbour entries everywhere. All node clients wait on one FIFO barrier and are
released together. A node is done when its client has the whole image with every
piece verified (aria2c's --on-bt-download-complete hook, libtorrent is_seeding,
or the HTTP download's end); BitTorrent nodes keep seeding until all are done.
After the clock stops every node's file is checked against the image's sha256.

Reported per run: time for all N / physical limit (image / node link rate),
server egress bytes (tx counter of the server's veth) / image size, and the
busiest second of CPU after the first 3 s, niced background work not counted
(`cpu_background_max` says how much there was; runs above 90% are flagged
`cpu_saturated` and not quoted; the first seconds, when all N clients start on
2 cores at once, are reported apart: `cpu_start_s` seconds above 90%).
Results go to stdout and are appended to bench/provision/results.jsonl.
Options after the known ones are passed to server.py (tracker/seeder policy).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import libtorrent as lt

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT / "src"))

from corral.lab.netns import Topology, ns_argv, run_ip  # noqa: E402

PY = str(ROOT / ".venv" / "bin" / "python")
SERVER_IP = "10.99.0.1"
HTTP_PORT = 8080
PIECE_KIB = 256  # what corral.images.torrent picks for images up to 256 MiB
MTU = 9000
CPU_FLAG = 0.9  # the busiest second above this: the machine, not the swarm, set the pace
STARTUP_S = 3  # seconds after the release in which every client starts at once
# server.py options per server preset (see the docstring)
PRESETS = {
    "corral": ["--preset", "corral"],
    "stock": ["--preset", "stock"],
}


@dataclass
class Run:
    n: int
    mode: str  # "http" | "bt"
    client: str  # "aria2c" | "fetch" | "lt"
    image: Path
    torrent: Path
    digest: str
    node_mbit: float
    server_mbit: float
    server_args: list[str]
    aria2c_args: list[str]
    label: str
    scratch: Path
    preset: str = "corral"  # the server side: "corral" | "stock" (bt only)
    fetch_bin: Path | None = None
    fetch_args: list[str] = field(default_factory=list)
    rep: int = 0
    queue_kib: int = 256  # every link's FIFO (shape())
    nodes: list[str] = field(default_factory=list)

    @property
    def config(self) -> str:
        return "http" if self.mode == "http" else f"{self.preset}:{self.client}"

    @property
    def pieces(self) -> int:
        return int(lt.torrent_info(str(self.torrent)).num_pieces())

    @property
    def size(self) -> int:
        return self.image.stat().st_size

    @property
    def limit(self) -> float:
        return self.size * 8 / (self.node_mbit * 1e6)

    @property
    def timeout(self) -> float:
        http_time = self.n * self.size * 8 / (self.server_mbit * 1e6)
        return 60 + 4 * max(self.limit, http_time if self.mode == "http" else self.limit)


# --- network ---------------------------------------------------------------------------


def sh(argv: list[str]) -> None:
    subprocess.run(argv, check=True, capture_output=True)


def shape(ns: str, dev: str, mbit: float, queue_kib: int = 256) -> None:
    """HTB at `mbit` on `dev`, one FIFO of `queue_kib` (256: about 1 s at 2 Mbit/s). Tried instead
    (round 6): small packets in a class ahead of the bulk, as fq_codel would let them;
    more TCP timeouts and slower at N = 8 and 64 (bench/RESULTS.md), so not kept."""
    rate = f"{mbit}mbit"
    tc = ["ip", "netns", "exec", ns, "tc"]
    sh([*tc, "qdisc", "replace", "dev", dev, "root", "handle", "1:", "htb", "default", "10"])
    sh([*tc, "class", "add", "dev", dev, "parent", "1:", "classid", "1:10", "htb", "rate", rate,
        "ceil", rate, "quantum", str(MTU + 14)])  # fmt: skip
    sh([*tc, "qdisc", "add", "dev", dev, "parent", "1:10", "handle", "10:", "bfifo", "limit",
        str(queue_kib << 10)])  # fmt: skip


def mac_of(index: int) -> str:
    return f"02:c0:{index >> 8:02x}:{index & 0xFF:02x}:00:01"


def ip_of(index: int) -> str:
    return SERVER_IP if index == 0 else f"10.99.{index // 200}.{10 + index % 200}"


def build(topo: Topology, run: Run) -> tuple[str, list[str]]:
    """Switch, server and node namespaces, shaped; returns (server ns, node namespaces)."""
    switch = topo.namespace("sw")
    topo.bridge(switch, "br0", mtu=MTU)
    members = [("srv", run.server_mbit)] + [(f"n{i}", run.node_mbit) for i in range(run.n)]
    spaces = []
    for index, (role, mbit) in enumerate(members):
        ns = topo.namespace(role)
        host_end = topo.attach(ns, switch, "br0", mac=mac_of(index),
                               address=f"{ip_of(index)}/16", mtu=MTU)  # fmt: skip
        shape(ns, "eth0", mbit, run.queue_kib)
        shape(switch, host_end, mbit, run.queue_kib)
        sh(ns_argv(ns, ["sysctl", "-qw", "net.ipv4.tcp_congestion_control=reno"]))
        spaces.append(ns)
    neighbours = "".join(
        f"neigh replace {ip_of(i)} lladdr {mac_of(i)} dev eth0 nud permanent\n"
        for i in range(len(members))
    )
    for index, ns in enumerate(spaces):
        batch = run.scratch / f"neigh-{index}"
        batch.write_text(neighbours)
        run_ip("-batch", str(batch), netns=ns)
    return spaces[0], spaces[1:]


def tx_bytes(ns: str) -> int:
    out = subprocess.run(ns_argv(ns, ["cat", "/sys/class/net/eth0/statistics/tx_bytes"]),
                         capture_output=True, text=True, check=True)  # fmt: skip
    return int(out.stdout)


# --- processes -------------------------------------------------------------------------


def client_argv(run: Run, index: int, out: Path, done: Path) -> list[str]:
    common = ["--file-allocation=none", "--summary-interval=0", "--console-log-level=warn",
              "--disable-ipv6=true", f"--dir={out}", "--allow-overwrite=true"]  # fmt: skip
    hook = str(HERE / "done-hook.sh")
    if run.mode == "http":
        url = f"http://{SERVER_IP}:{HTTP_PORT}/image"
        return ["aria2c", *common, "--split=1", "--max-connection-per-server=1",
                f"--on-download-complete={hook}", url]  # fmt: skip
    if run.client == "lt":
        return [PY, str(HERE / "ltclient.py"), str(run.torrent), str(out), str(done)]
    if run.client == "fetch":
        if run.fetch_bin is None:
            raise SystemExit("client fetch needs --fetch-bin (corral.images.fetchclient)")
        return [str(run.fetch_bin), "get", "--torrent", str(run.torrent), "--dir", str(out),
                "--done-file", str(done), "--seed-seconds", "1000",
                "--listen-port", "6881", *run.fetch_args]  # fmt: skip
    # the flags corral/agent/init gives aria2c (the client the initramfs ships)
    return ["aria2c", *common, "--enable-dht=false", "--enable-dht6=false",
            "--bt-enable-lpd=false", "--enable-peer-exchange=true", "--seed-ratio=0",
            "--seed-time=1000", "--bt-max-peers=55", "--bt-request-peer-speed-limit=100M",
            "--bt-tracker-interval=5", "--bt-stop-timeout=120",
            "--listen-port=6881", "--check-integrity=false", f"--on-bt-download-complete={hook}",
            *run.aria2c_args, str(run.torrent)]  # fmt: skip


@contextmanager
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Popen handles started by this run; each is stopped by its own PID at exit."""
    procs: list[subprocess.Popen[bytes]] = []
    try:
        yield procs
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        deadline = time.monotonic() + 10
        for proc in procs:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def start_server(run: Run, srv: str, procs: list[subprocess.Popen[bytes]]) -> Path:
    stats = run.scratch / "server-stats.json"
    argv = [PY, str(HERE / "server.py"), "--listen", SERVER_IP, "--http-port", str(HTTP_PORT),
            "--torrent", str(run.torrent), "--image", str(run.image), "--stats", str(stats),
            *(["--no-seeder"] if run.mode == "http" else []),
            *(PRESETS[run.preset] if run.mode == "bt" else []), *run.server_args]  # fmt: skip
    log = (run.scratch / "server.log").open("wb")
    proc = subprocess.Popen(ns_argv(srv, argv), stdout=subprocess.PIPE, stderr=log)
    procs.append(proc)
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != b"READY":
        raise RuntimeError("server did not start: see " + str(run.scratch / "server.log"))
    return stats


def start_nodes(run: Run, nodes: list[str], procs: list[subprocess.Popen[bytes]]) -> list[Path]:
    fifo = run.scratch / "barrier"
    os.mkfifo(fifo)
    dones = []
    for index, ns in enumerate(nodes):
        out, done = run.scratch / f"node{index}", run.scratch / f"done{index}"
        out.mkdir()
        ready = run.scratch / f"ready{index}"
        argv = ["python3", "-S", str(HERE / "barrier.py"), str(ready), str(fifo),
                *client_argv(run, index, out, done)]  # fmt: skip
        env = {**os.environ, "NODE_DONE": str(done)}
        log = (run.scratch / f"node{index}.log").open("wb")
        procs.append(subprocess.Popen(ns_argv(ns, argv), env=env, stdout=log, stderr=log,
                                      cwd=out))  # fmt: skip
        dones.append(done)
    while not all((run.scratch / f"ready{i}").exists() for i in range(len(nodes))):
        time.sleep(0.05)
    time.sleep(0.5)  # every node is now blocked in open(FIFO)
    return dones


# --- measurement -----------------------------------------------------------------------


class CpuLog(threading.Thread):
    """Busy fraction of all CPUs, per second, from /proc/stat.

    Time in niced processes (the `nice` column: background work at low priority, which
    yields the CPU to the benchmark) is not counted as busy; it is logged apart
    (`background`), so a run beside such work says how much there was."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.samples: list[float] = []
        self.background: list[float] = []
        self.stopped = threading.Event()

    @staticmethod
    def read() -> tuple[int, int, int]:
        # user nice system idle iowait irq softirq steal (guest time is inside user/nice)
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:9]]
        idle, nice = fields[3] + fields[4], fields[1]
        return sum(fields) - idle - nice, nice, sum(fields)

    def run(self) -> None:
        busy0, nice0, total0 = self.read()
        while not self.stopped.wait(1.0):
            busy1, nice1, total1 = self.read()
            span = max(1, total1 - total0)
            self.samples.append((busy1 - busy0) / span)
            self.background.append((nice1 - nice0) / span)
            busy0, nice0, total0 = busy1, nice1, total1


def wait_done(dones: list[Path], start: float, timeout: float) -> list[float | None]:
    times: list[float | None] = [None] * len(dones)
    while time.monotonic() - start < timeout and None in times:
        for i, done in enumerate(dones):
            if times[i] is None and done.exists():
                times[i] = done.stat().st_mtime - start_wall(start)
        time.sleep(0.1)
    return times


_WALL_OFFSET = time.time() - time.monotonic()


def start_wall(start: float) -> float:
    return start + _WALL_OFFSET


def verify(run: Run) -> int:
    """How many nodes hold a file whose sha256 is the image's."""
    name = "image" if run.mode == "http" else run.image.name
    good = 0
    for i in range(run.n):
        path = run.scratch / f"node{i}" / name
        if path.exists() and hashlib.sha256(path.read_bytes()).hexdigest() == run.digest:
            good += 1
    return good


def measure(run: Run) -> dict[str, object]:
    with Topology("bp") as topo, processes() as procs:
        srv, nodes = build(topo, run)
        stats_file = start_server(run, srv, procs)
        dones = start_nodes(run, nodes, procs)
        tx0, cpu = tx_bytes(srv), CpuLog()
        cpu.start()
        fifo = open(run.scratch / "barrier", "wb")  # noqa: SIM115 - releases every node
        start = time.monotonic()
        fifo.close()
        times = wait_done(dones, start, run.timeout)
        cpu.stopped.set()
        egress = tx_bytes(srv) - tx0
        tcp = tcp_counters([srv, *nodes])
        procs[0].terminate()
        procs[0].wait(30)
    server = json.loads(stats_file.read_text()) if stats_file.exists() else {}
    result = report(run, times, egress, cpu.samples, verify(run), server)
    result["tcp"] = tcp
    result["cpu_background_max"] = round(max(cpu.background, default=0.0), 2)
    return result


def tcp_counters(spaces: list[str]) -> dict[str, int]:
    """Segments sent, retransmitted, and retransmission timeouts, summed over the
    namespaces (each starts at 0): how well TCP copes with many flows on a thin link."""
    total = {"OutSegs": 0, "RetransSegs": 0, "TCPTimeouts": 0}
    for ns in spaces:
        out = subprocess.run(ns_argv(ns, ["cat", "/proc/net/snmp", "/proc/net/netstat"]),
                             capture_output=True, text=True, check=True).stdout  # fmt: skip
        lines = out.splitlines()
        for names, values in zip(lines[::2], lines[1::2], strict=False):
            if names.split(":")[0] != values.split(":")[0]:
                continue
            for name, value in zip(names.split()[1:], values.split()[1:], strict=True):
                if name in total:
                    total[name] += int(value)
    return total


def report(run: Run, times: list[float | None], egress: int, cpu: list[float], good: int,
           server: dict[str, object]) -> dict[str, object]:  # fmt: skip
    finished = [t for t in times if t is not None]
    all_done = max(finished) if len(finished) == run.n else None
    return {
        "label": run.label, "n": run.n, "mode": run.mode, "rep": run.rep,
        "config": run.config,
        "client": "aria2c" if run.mode == "http" else run.client,
        "image_mib": run.size / 2**20, "pieces": run.pieces,
        "node_mbit": run.node_mbit, "server_mbit": run.server_mbit,
        "limit_s": round(run.limit, 2),
        "time_all_s": round(all_done, 2) if all_done else None,
        "time_ratio": round(all_done / run.limit, 3) if all_done else None,
        "median_ratio": round(statistics.median(finished) / run.limit, 3) if finished else None,
        "done": len(finished), "verified": good,
        "egress_ratio": round(egress / run.size, 3),
        "cpu_max": round(max(cpu, default=0.0), 3),
        # after the start: N clients exec'd in the same second is one burst that N real
        # machines would each take on their own CPU (reported, and how long it lasted)
        "cpu_max_steady": round(max(cpu[STARTUP_S:], default=0.0), 3),
        "cpu_start_s": sum(1 for x in cpu[:STARTUP_S] if x > CPU_FLAG),
        "cpu_series": [round(x, 2) for x in cpu],
        "cpu_saturated": max(cpu[STARTUP_S:], default=0.0) > CPU_FLAG,
        "server_args": run.server_args, "aria2c_args": run.aria2c_args,
        "fetch_args": run.fetch_args, "queue_kib": run.queue_kib,
        "server": server,
    }  # fmt: skip


# --- driver ----------------------------------------------------------------------------


def make_image(workdir: Path, mib: int, piece_kib: int) -> tuple[Path, Path, str]:
    """Random bytes, and a torrent of `piece_kib` pieces (a real image has about 1,024
    pieces, corral.images.torrent; keep the count near the earlier rounds' 32 when the
    image is made smaller to make runs shorter)."""
    image = workdir / f"image-{mib}.bin"
    if not image.exists():
        image.write_bytes(os.urandom(mib << 20))
    torrent = image.with_suffix(f".{piece_kib}k.torrent")
    ct = lt.create_torrent(lt.list_files(str(image)), piece_kib << 10, lt.create_torrent.v1_only)
    ct.add_tracker(f"http://{SERVER_IP}:{HTTP_PORT}/announce")
    ct.set_priv(True)
    lt.set_piece_hashes(ct, str(workdir))
    torrent.write_bytes(lt.bencode(ct.generate()))
    return image, torrent, hashlib.sha256(image.read_bytes()).hexdigest()


def parse() -> tuple[argparse.Namespace, list[str]]:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, nargs="+", default=[1, 8, 32, 64])
    p.add_argument(
        "--configs",
        nargs="+",
        default=["http", "corral:aria2c", "stock:lt"],
        help="http, or SERVER:CLIENT with SERVER corral|stock, CLIENT aria2c|fetch|lt",
    )
    p.add_argument("--repeat", type=int, default=1, help="runs per N and configuration")
    p.add_argument("--image-mib", type=int, default=8)
    p.add_argument("--piece-kib", type=int, default=PIECE_KIB)
    p.add_argument("--node-mbit", type=float, default=2)
    p.add_argument("--server-mbit", type=float, default=20)
    p.add_argument("--label", default="")
    p.add_argument("--queue-kib", type=int, default=256, help="every link's FIFO (KiB)")
    p.add_argument("--aria2c-arg", action="append", default=[])
    p.add_argument("--fetch-bin", type=Path, help="corral-fetch (corral.images.fetchclient)")
    p.add_argument("--fetch-arg", action="append", default=[],
                   help="one more corral-fetch argument (e.g. --fetch-arg=--set "
                        "--fetch-arg=unchoke_slots_limit=8)")  # fmt: skip
    p.add_argument("--workdir", type=Path, default=Path("/dev/shm/corral-bench"))
    p.add_argument("--results", type=Path, default=HERE / "results.jsonl")
    return p.parse_known_args()


def configuration(text: str) -> tuple[str, str, str]:
    """(mode, server preset, client) of `http` or `SERVER:CLIENT`."""
    if text == "http":
        return "http", "corral", "aria2c"
    preset, _, client = text.partition(":")
    if preset not in PRESETS or client not in ("aria2c", "fetch", "lt"):
        raise SystemExit(f"unknown configuration {text!r}: http or corral|stock:aria2c|fetch|lt")
    return "bt", preset, client


def main() -> None:
    # SIGTERM unwinds like Ctrl-C: the namespaces and clients of the run in progress go
    # (Python's default would end the process with them left behind)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    args, server_args = parse()
    configs = [configuration(c) for c in args.configs]
    args.workdir.mkdir(parents=True, exist_ok=True)
    image, torrent, digest = make_image(args.workdir, args.image_mib, args.piece_kib)
    for rep in range(args.repeat):
        for n in args.n:
            for mode, preset, client in configs:  # interleaved: the same hour for each
                scratch = Path(tempfile.mkdtemp(prefix="run-", dir=args.workdir))
                run = Run(n, mode, client, image, torrent, digest, args.node_mbit,
                          args.server_mbit, server_args if mode == "bt" else [],
                          args.aria2c_arg, args.label, scratch, preset, args.fetch_bin,
                          args.fetch_arg, rep, args.queue_kib)  # fmt: skip
                try:
                    result = measure(run)
                finally:
                    shutil.rmtree(scratch, ignore_errors=True)
                line = json.dumps(result)
                print(line, flush=True)
                with args.results.open("a") as fh:
                    fh.write(line + "\n")


if __name__ == "__main__":
    main()
