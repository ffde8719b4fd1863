"""A libtorrent node client with libtorrent's defaults: the stock swarm's nodes.

    python ltclient.py TORRENT SAVE_DIR DONE_FILE

Downloads, touches DONE_FILE when every piece is verified, keeps seeding until SIGTERM.
"""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

import libtorrent as lt


def session() -> lt.session:
    pack = {
        "listen_interfaces": "0.0.0.0:6881",
        "enable_dht": False,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "enable_incoming_utp": False,
        "enable_outgoing_utp": False,
        "allow_multiple_connections_per_ip": True,
        "announce_to_all_tiers": True,
        "alert_mask": 0,
    }
    return lt.session(pack)  # type: ignore[call-overload]


def main() -> None:
    torrent, save, done = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    ses = session()
    params = lt.load_torrent_file(torrent)
    params.save_path = str(save)
    handle = ses.add_torrent(params)
    while not stop:
        if not done.exists() and handle.status().is_seeding:
            done.touch()
        time.sleep(0.1)
    ses.pause()


if __name__ == "__main__":
    main()
