"""Fuzz a real `corral serve` TFTP server with 10^6 datagrams: 0 crashes, bounded memory.

Usage: .venv/bin/python bench/fuzz_tftp.py [--count 1000000] [--seed 10] [--sources 16]

The server is `corral serve --no-dhcp --no-seeder` on loopback with a scratch
CORRAL_HOME and a TFTP root holding undionly.kpxe, a 1 MiB binary and a
256 KiB text file (netascii). The fuzzer (tests/helpers/tftp_fuzz.py, the same
one the CI test runs at 20,000) sends random bytes, mutated packets and valid
requests with arbitrary options from `--sources` loopback addresses, and
answers the server's transfers with ACKs near and far, errors and garbage.
Reports the server's RSS and open files before, after, and once its
transfers have timed out, then checks that tftp-hpa still gets a file.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.helpers.tftp_fuzz import fuzz, tftp_serve

UNDIONLY = Path("/usr/lib/ipxe/undionly.kpxe")
NAMES = ["undionly.kpxe", "big.bin", "text.txt"]


def make_root(root: Path) -> None:
    root.mkdir()
    shutil.copy(UNDIONLY, root / "undionly.kpxe")
    (root / "big.bin").write_bytes(os.urandom(1 << 20))
    lines = b"".join(b"line %d of a text file\r\n\n" % i for i in range(10_000))
    (root / "text.txt").write_bytes(lines[: 256 * 1024])


def tftp_get(port: int, out: Path) -> bool:
    argv = ["tftp", "-m", "binary", "127.0.0.1", str(port), "-c", "get", "undionly.kpxe", str(out)]
    subprocess.run(argv, capture_output=True, timeout=60, check=False)
    return out.exists() and out.read_bytes() == UNDIONLY.read_bytes()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=10)
    parser.add_argument("--sources", type=int, default=16)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="corral-fuzz-") as scratch:
        tmp = Path(scratch)
        make_root(tmp / "root")
        with tftp_serve(tmp / "home", tmp / "root") as served:
            assert tftp_get(served.port, tmp / "warm"), "tftp-hpa could not get a file"
            rss0, files0 = served.rss_kib(), served.open_files()
            started = time.monotonic()
            report = fuzz(served.port, args.count, args.seed, NAMES, args.sources)
            took = time.monotonic() - started
            rss1, files1 = served.rss_kib(), served.open_files()
            time.sleep(8)  # abandoned transfers time out (1 s x 6 tries)
            rss2, files2 = served.rss_kib(), served.open_files()
            alive = served.alive
            works = tftp_get(served.port, tmp / "after")
    print(f"datagrams sent      {report.sent:,} in {took:.0f} s ({report.sent / took:,.0f}/s)")
    print(f"server replies seen {report.replies_seen:,}; send errors {report.send_errors:,}")
    mib = [f"{kib / 1024:.1f}" for kib in (rss0, rss1, rss2)]
    print(f"server RSS (MiB)    before {mib[0]}  after {mib[1]}  +8 s {mib[2]}")
    print(f"open files          before {files0}  after {files1}  +8 s {files2}")
    print(f"server alive        {alive}; tftp-hpa get afterwards: {'ok' if works else 'FAILED'}")
    if not (alive and works):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
