"""The provisioning server of the benchmark: corral's tracker + seeder + plain HTTP file serving.

Runs inside the server namespace (started by run.py):

    python bench/provision/server.py --listen 10.99.0.1 --torrent T --image F [options]

Serves `GET /announce` (corral.services.tracker route table) and `GET /image`
(aiohttp FileResponse: the HTTP-unicast baseline, sendfile), seeds the torrent
with corral.services.seeder, prints one line `READY` when all three are up,
and at SIGTERM writes its stats (tracker + seeder) as JSON to --stats.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from dataclasses import asdict
from pathlib import Path

from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))

from corral.services.seeder import Seeder, SeederSettings
from corral.services.serve import ServeOptions
from corral.services.tracker import Tracker, TrackerPolicy, tracker_routes


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser()
    p.add_argument("--listen", required=True)
    p.add_argument("--http-port", type=int, default=8080)
    p.add_argument("--bt-port", type=int, default=6881)
    p.add_argument("--torrent", type=Path, required=True)
    p.add_argument("--image", type=Path, required=True)
    p.add_argument("--stats", type=Path, required=True)
    p.add_argument(
        "--preset",
        choices=["corral", "stock", "custom"],
        default="custom",
        help="corral: what `corral serve` ships; stock: a plain libtorrent seed "
        "(8 upload slots) behind a tracker handing out random peers; custom: "
        "the options below",
    )
    p.add_argument("--no-seeder", action="store_true")
    p.add_argument("--seeder-rate", type=int, default=0, help="bytes/s, 0 = unlimited")
    p.add_argument("--super-seeding", action="store_true")
    p.add_argument("--spread-copies", type=float, default=0.0)
    p.add_argument("--trickle-rate", type=int, default=64 * 1024)
    p.add_argument("--unchoke-slots", type=int, default=8)
    p.add_argument("--server-seed-until", type=int, default=10**6)
    p.add_argument("--storm-interval", type=int, default=15)
    p.add_argument("--numwant", type=int, default=50)
    p.add_argument("--no-progress-order", action="store_true")
    p.add_argument("--seeder-set", action="append", default=[], metavar="NAME=VALUE",
                   help="a libtorrent setting for the seed (an int, or true/false)")  # fmt: skip
    args = p.parse_args()
    custom = [opt for opt in CUSTOM_OPTIONS if getattr(args, opt) != p.get_default(opt)]
    if args.preset != "custom" and custom:
        # a preset ignores them: a run would measure the preset under another name
        p.error(f"--preset {args.preset} ignores {', '.join(custom)}: add --preset custom")
    return args


# the options only `--preset custom` reads
CUSTOM_OPTIONS = ("seeder_rate", "super_seeding", "spread_copies", "trickle_rate",
                  "unchoke_slots", "server_seed_until", "storm_interval", "numwant",
                  "no_progress_order", "seeder_set")  # fmt: skip


def policy_of(args: argparse.Namespace) -> TrackerPolicy:
    if args.preset == "corral":
        return TrackerPolicy()  # what corral.services.serve runs
    if args.preset == "stock":
        return TrackerPolicy(server_seed_until=10**6, progress_buckets=1)
    return TrackerPolicy(
        storm_interval=args.storm_interval,
        server_seed_until=args.server_seed_until,
        default_numwant=args.numwant,
        progress_buckets=1 if args.no_progress_order else 4,
    )


def seeder_settings(args: argparse.Namespace) -> SeederSettings:
    if args.preset == "corral":
        return ServeOptions().seeder_settings
    if args.preset == "stock":
        return SeederSettings()  # libtorrent's defaults: 8 upload slots, round robin
    return SeederSettings(
        upload_rate=args.seeder_rate,
        super_seeding=args.super_seeding,
        spread_copies=args.spread_copies,
        trickle_rate=args.trickle_rate,
        unchoke_slots=args.unchoke_slots,
        extra=dict(setting(text) for text in args.seeder_set),
    )


def setting(text: str) -> tuple[str, int | bool]:
    name, _, value = text.partition("=")
    if value in ("true", "false"):
        return name, value == "true"
    return name, int(value)


async def main(args: argparse.Namespace) -> None:
    tracker = Tracker(policy_of(args))
    app = web.Application()
    app.router.add_routes(tracker_routes(tracker))

    async def image(request: web.Request) -> web.StreamResponse:
        return web.FileResponse(args.image, chunk_size=1 << 20)

    app.router.add_get("/image", image)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, args.listen, args.http_port, backlog=1024).start()
    seeder = Seeder(args.listen, args.bt_port, seeder_settings(args))
    info_hash = ""
    if not args.no_seeder:
        await seeder.start()
        info_hash = seeder.publish(args.torrent, args.image)
    size = args.image.stat().st_size
    seeds = [] if args.no_seeder else [(args.listen, args.bt_port)]
    key = tracker.publish(info_hash or torrent_hash(args.torrent), size, seeds=seeds)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    print("READY", flush=True)
    await stop.wait()
    stats = {
        "tracker": tracker.stats().get(key.hex(), {}),
        "seeder": {k: asdict(v) for k, v in seeder.stats().items()} if seeder.session else {},
    }
    args.stats.write_text(json.dumps(stats))
    await seeder.stop()
    await runner.cleanup()


def torrent_hash(torrent: Path) -> str:
    import libtorrent as lt

    return str(lt.load_torrent_file(str(torrent)).ti.info_hash())


if __name__ == "__main__":
    asyncio.run(main(parse()))
