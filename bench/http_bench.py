"""wrk on a boot script and a 256 MiB artifact: corral serve (aiohttp) vs nginx vs FastAPI.

Usage: .venv/bin/python bench/http_bench.py [--size-mib 256] [--runs 3] [--duration 8]
       [--script-conns 32] [--artifact-conns 4] [--nginx-workers 1]

All on loopback, in the same run, on free ports:
- corral: `corral serve --no-dhcp --no-tftp --address 127.0.0.1` on a scratch
  CORRAL_HOME with one node (MAC 52:54:00:be:00:01, address 127.0.0.1) whose image
  names the artifact as kernel and initramfs, so `/boot/<mac>.ipxe` takes the real
  path (MAC lookup, the node's addresses, node view, image record, a boot token
  written) and `/artifacts/<sha256>` is FileResponse.
- nginx: `nginx -g 'daemon off;'` with its own config (`worker_processes` N,
  sendfile on, access_log off) serving the same artifact file and a static copy of
  the script corral produced; stopped by its PID.
- FastAPI + uvicorn (httptools, uvloop; one worker): the same `script_for` as
  corral (sync route, so Starlette runs it in its thread pool like corral's
  `ctx.run`) and Starlette's FileResponse on the same file. Needs
  `pip install fastapi uvicorn httptools uvloop` in the venv (bench only).

wrk: `wrk -t2 -cC -dDs URL`; servers alternate order per run. Reported: median
requests/s (script) and MiB/s (artifact) over the runs, ratios to nginx.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from corral.images import catalog
from corral.images.records import Image
from corral.store.db import open_store

CORRAL = [sys.executable, "-m", "corral.cli"]
MAC = "52:54:00:be:00:01"
BLOB = Path("/var/tmp/corral-http-bench.bin")

FASTAPI_APP = """
import os
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, PlainTextResponse
from corral.app import Corral
from corral.config import Settings
from corral.services.http.boot import script_for
from corral.services.http.context import HttpContext

corral = Corral(Settings.from_env())
ctx = HttpContext(corral, "", os.environ["BENCH_SERVER_URL"], corral.settings.paths.tftp_root)
app = FastAPI()


@app.get("/boot/{mac}.ipxe")
def boot(mac: str, request: Request) -> PlainTextResponse:
    text = script_for(ctx, mac.lower(), request.client.host if request.client else "")
    return PlainTextResponse(text, headers={"Cache-Control": "no-store"})


@app.get("/artifacts/{name}")
async def artifact(name: str) -> FileResponse:
    return FileResponse(corral.settings.paths.artifacts / name)
"""

NGINX_CONF = """
daemon off;
user root;
worker_processes {workers};
pid {work}/nginx.pid;
error_log {work}/nginx.err warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 100000;
    client_body_temp_path {work}/nginx-tmp;
    proxy_temp_path {work}/nginx-tmp;
    fastcgi_temp_path {work}/nginx-tmp;
    uwsgi_temp_path {work}/nginx-tmp;
    scgi_temp_path {work}/nginx-tmp;
    default_type application/octet-stream;
    server {{
        listen 127.0.0.1:{port};
        location /artifacts/ {{ alias {artifacts}/; }}
        location /boot/ {{ alias {work}/boot/; default_type text/plain; }}
    }}
}}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def wait_http(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up:\n{log.read_text(errors='replace')}")


def make_blob(size_mib: int) -> Path:
    if not BLOB.exists() or BLOB.stat().st_size != size_mib << 20:
        tmp = BLOB.with_suffix(".tmp")
        with tmp.open("wb") as f:
            for _ in range(size_mib):
                f.write(os.urandom(1 << 20))
        tmp.replace(BLOB)
    return BLOB


def make_home(home: Path, blob: Path) -> str:
    """A CORRAL_HOME with one bootable node; returns the artifact's name (its sha256)."""
    env = {**os.environ, "CORRAL_HOME": str(home)}

    def corral(*args: str) -> None:
        subprocess.run([*CORRAL, *args], env=env, check=True, capture_output=True)

    corral("init")
    # the node lives at 127.0.0.1, where the load comes from: the script mints its boot token
    corral("network", "add", "bench", "--cidr", "127.0.0.0/16")
    digest = hashlib.sha256(blob.read_bytes()).hexdigest()
    artifacts = home / "artifacts"
    artifacts.mkdir(parents=True, exist_ok=True)
    try:
        os.link(blob, artifacts / digest)
    except OSError:
        shutil.copy(blob, artifacts / digest)
    size = blob.stat().st_size
    file = {"sha256": digest, "size": size, "format": "bzImage"}
    torrent = {**file, "info_hash": "0" * 40, "piece_size": 1 << 18, "tracker": "", "web_seed": ""}
    artifacts_spec = {
        "fingerprint": "bench",
        "digest": "sha256:" + digest,
        "server_url": "",
        "built": time.time(),
        "kernel_version": "6.1.0",
        "image": file,
        "torrent": torrent,
        "kernel": file,
        "initramfs": file,
    }
    image = Image.model_validate(
        {
            "name": "bench",
            "architecture": "x86_64",
            "digest": "sha256:" + digest,
            "size": size,
            "source": "bench",
            "created": time.time(),
            "fingerprint": "bench",
            "artifacts": artifacts_spec,
        }
    )
    store = open_store(f"sqlite:///{home / 'corral.db'}")
    with store.transaction() as conn:
        catalog.insert(conn, image)
    store.close()
    corral("node", "add", "n001", "--network", "bench", "--mac", MAC, "--ip", "127.0.0.1")
    corral("node", "set", "n001", "--image", "bench")
    return digest


@contextmanager
def corral_server(home: Path, work: Path) -> Iterator[str]:
    port = free_port()
    log = work / "corral.log"
    argv = [*CORRAL, "serve", "--no-dhcp", "--no-tftp", "--no-dns", "--address", "127.0.0.1"]
    argv += ["--http-port", str(port)]
    env = {**os.environ, "CORRAL_HOME": str(home)}
    with log.open("ab") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=out, env=env)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_http(f"{base}/boot/{MAC}.ipxe", proc, log)
        yield base
    finally:
        stop(proc)


@contextmanager
def fastapi_server(home: Path, work: Path) -> Iterator[str]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    (work / "fastapi_bench_app.py").write_text(FASTAPI_APP)
    log = work / "uvicorn.log"
    argv = [sys.executable, "-m", "uvicorn", "fastapi_bench_app:app", "--app-dir", str(work)]
    argv += ["--host", "127.0.0.1", "--port", str(port), "--no-access-log"]
    argv += ["--log-level", "warning", "--http", "httptools", "--loop", "uvloop"]
    env = {**os.environ, "CORRAL_HOME": str(home), "BENCH_SERVER_URL": base}
    with log.open("ab") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=out, env=env)
    try:
        wait_http(f"{base}/boot/{MAC}.ipxe", proc, log)
        yield base
    finally:
        stop(proc)


@contextmanager
def nginx_server(home: Path, work: Path, workers: int, script: str) -> Iterator[str]:
    port = free_port()
    (work / "nginx-tmp").mkdir(exist_ok=True)
    (work / "boot").mkdir(exist_ok=True)
    (work / "boot" / f"{MAC}.ipxe").write_text(script)
    conf = work / "nginx.conf"
    conf.write_text(
        NGINX_CONF.format(workers=workers, work=work, port=port, artifacts=home / "artifacts")
    )
    log = work / "nginx.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(["nginx", "-c", str(conf), "-p", str(work)], stdout=out, stderr=out)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_http(f"{base}/boot/{MAC}.ipxe", proc, log)
        yield base
    finally:
        stop(proc)


UNITS = {"B": 1, "KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30}


def wrk(url: str, conns: int, duration: int) -> dict[str, float]:
    argv = ["wrk", "-t2", f"-c{conns}", f"-d{duration}s", "--timeout", "30s", url]
    out = subprocess.run(
        argv, capture_output=True, text=True, check=True, timeout=duration + 60
    ).stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    tps = re.search(r"Transfer/sec:\s+([\d.]+)(\w+)", out)
    if rps is None or tps is None:
        raise RuntimeError(f"unexpected wrk output:\n{out}")
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {
        "rps": float(rps.group(1)),
        "mib_s": float(tps.group(1)) * UNITS[tps.group(2)] / (1 << 20),
        "errors": float(errors.group(1) if errors else 0)
        + (sum(int(g) for g in sock.groups()) if sock else 0),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--duration", type=int, default=8)
    parser.add_argument("--script-conns", type=int, default=32)
    parser.add_argument("--artifact-conns", type=int, default=4)
    parser.add_argument("--nginx-workers", type=int, default=1)
    parser.add_argument("--no-fastapi", action="store_true")
    parser.add_argument("--json", action="store_true", help="also print every run as JSON")
    args = parser.parse_args()
    for tool in ("wrk", "nginx"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} not found: apt-get install wrk nginx-light")
    blob = make_blob(args.size_mib)
    results: dict[tuple[str, str], list[dict[str, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work, home = Path(tmp), Path(tmp, "home")
        digest = make_home(home, blob)
        with (
            corral_server(home, work) as base,
            urllib.request.urlopen(f"{base}/boot/{MAC}.ipxe") as resp,
        ):
            script = resp.read().decode()
        servers: dict[str, Callable[[], AbstractContextManager[str]]] = {
            "corral": lambda: corral_server(home, work),
            "nginx": lambda: nginx_server(home, work, args.nginx_workers, script),
        }
        if not args.no_fastapi:
            servers["fastapi"] = lambda: fastapi_server(home, work)
        for i in range(args.runs):
            names = list(servers)
            names = names[i % len(names) :] + names[: i % len(names)]
            for name in names:
                with servers[name]() as base:
                    for endpoint, path, conns in (
                        ("script", f"/boot/{MAC}.ipxe", args.script_conns),
                        ("artifact", f"/artifacts/{digest}", args.artifact_conns),
                    ):
                        got = wrk(base + path, conns, args.duration)
                        results.setdefault((name, endpoint), []).append(got)
                        if args.json:
                            print(json.dumps({"server": name, "endpoint": endpoint, **got}))
    report(results, args)


def report(
    results: dict[tuple[str, str], list[dict[str, float]]], args: argparse.Namespace
) -> None:
    print(
        f"wrk -t2, {args.duration} s, {args.runs} runs (medians); script -c{args.script_conns}, "
        f"{args.size_mib} MiB artifact -c{args.artifact_conns}; nginx workers {args.nginx_workers}"
    )
    print("| server | script req/s | x nginx | artifact MiB/s | x nginx | errors |")
    print("| --- | --- | --- | --- | --- | --- |")
    ref_s = statistics.median(r["rps"] for r in results["nginx", "script"])
    ref_a = statistics.median(r["mib_s"] for r in results["nginx", "artifact"])
    for name in ("corral", "nginx", "fastapi"):
        if (name, "script") not in results:
            continue
        s = statistics.median(r["rps"] for r in results[name, "script"])
        a = statistics.median(r["mib_s"] for r in results[name, "artifact"])
        errors = sum(r["errors"] for key in ("script", "artifact") for r in results[name, key])
        print(f"| {name} | {s:.0f} | {s / ref_s:.2f} | {a:.0f} | {a / ref_a:.2f} | {errors:.0f} |")


if __name__ == "__main__":
    main()
