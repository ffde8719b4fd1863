"""What HTTPS costs the node calls: the same request over plain HTTP and HTTPS, one new
connection each (as the initramfs makes them), against a live `corral serve` app.

    PYTHONPATH=. .venv/bin/python bench/tls_cost.py --requests 300

Prints the median and 90th percentile per request for both, and the difference.
"""

from __future__ import annotations

import argparse
import http.client
import os
import ssl
import statistics
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

Connect = Callable[[], http.client.HTTPConnection]


def measure(connect: Connect, n: int) -> list[float]:
    """Seconds per request, each on a new connection (401: the cheapest node call)."""
    out = []
    for _ in range(n):
        start = time.perf_counter()
        conn = connect()
        conn.request("GET", "/api/v1/boot/self")
        conn.getresponse().read()
        conn.close()
        out.append(time.perf_counter() - start)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        os.environ["CORRAL_HOME"] = home
        os.environ.pop("CORRAL_DATABASE_URL", None)
        from tests.helpers.loop import run_in_thread

        from corral.app import Corral
        from corral.config import Settings
        from corral.services.serve import CorralServer, ServeOptions

        corral = Corral(Settings.from_env())
        opts = ServeOptions(
            address="127.0.0.1", http_port=0, https_port=0, tftp=False, dhcp=False, seeder=False
        )
        for _ in run_in_thread(CorralServer(corral, opts)):
            context = ssl.create_default_context(cafile=str(Path(home) / "pki" / "ca.pem"))
            tls_port = opts.https_port or 0

            plain = measure(
                partial(http.client.HTTPConnection, "127.0.0.1", opts.http_port), args.requests
            )
            tls = measure(
                partial(http.client.HTTPSConnection, "127.0.0.1", tls_port, context=context),
                args.requests,
            )
    for name, times in (("http", plain), ("https", tls)):
        median, p90 = statistics.median(times), statistics.quantiles(times, n=10)[8]
        print(f"{name:6} median {median * 1000:.2f} ms  p90 {p90 * 1000:.2f} ms")
    extra = statistics.median(tls) - statistics.median(plain)
    print(f"https - http (median): {extra * 1000:.2f} ms")


if __name__ == "__main__":
    main()
