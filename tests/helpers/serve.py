"""`corral serve` as a real process inside a test namespace."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from corral.lab.netns import ns_argv
from tests.helpers.clients import stop, wait_for_text

CORRAL = [sys.executable, "-m", "corral.cli"]


@contextmanager
def corral_serve(
    netns: str, home: Path, *args: str, log: Path | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """Run `corral serve ARGS` in `netns` on `home`; stopped (by PID) on exit."""
    log = log or home.parent / "serve.log"
    env = {**os.environ, "CORRAL_HOME": str(home)}
    out = log.open("ab")
    start = out.tell()  # a restart appends: wait for this run's line, not the last one's
    argv = ns_argv(netns, [*CORRAL, "serve", "-v", *args])
    proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        if not wait_for_text(log, "corral serving at", 120, proc, after=start):
            pytest.fail(f"corral serve did not start:\n{log.read_text()}")
        yield proc
    finally:
        stop(proc)
        out.close()
