"""The TFTP server's worker processes: start them, hand them transfers, restart the dead.

Why processes and not threads: measured on 2 cores, 64 atftp clients, two
event loops in two threads of one process took 2.5x as long as one loop (the
GIL, taken and dropped around every send), two processes 0.6x.

Workers are started with `subprocess` (fork + exec of ``python -m
corral.services.tftp_worker``), never multiprocessing's fork: `corral serve`
has threads. They are always started from the event loop's thread, since
PR_SET_PDEATHSIG (the worker's "die with the server") follows the thread that
forked. Each has one SOCK_SEQPACKET socketpair to the server: requests
and their files go down, reports come up, and EOF in either direction means
the other side is gone. A worker that dies is replaced; the transfers it had
are reported lost (the server counts them failed and frees their slots) and
their clients time out as with any lost server.
"""

from __future__ import annotations

import array
import asyncio
import json
import logging
import os
import site
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import corral
from corral.protocols.tftp import SessionConfig
from corral.services.tftp_handoff import MAX_MESSAGE, Handoff, Report

log = logging.getLogger(__name__)
RESTART_BACKOFF = 1.0  # a worker that dies this soon after its start is restarted this late
STOP_GRACE = 5.0
READY_TIMEOUT = 30.0
MAX_DEFAULT_WORKERS = 4  # TFTP only carries the first boot loader; each worker is ~30 MB


def default_workers() -> int:
    """One worker per core, at most MAX_DEFAULT_WORKERS."""
    return max(1, min(os.cpu_count() or 1, MAX_DEFAULT_WORKERS))


class _Worker:
    def __init__(self, proc: subprocess.Popen[bytes], sock: socket.socket) -> None:
        self.proc = proc
        self.sock = sock
        self.started = time.monotonic()
        self.tids: set[int] = set()
        self.handed = 0  # transfers given to this worker since it started
        self.alive = True
        self.ready = asyncio.get_running_loop().create_future()  # its first report came


class WorkerPool:
    """`count` worker processes; `on_report` and `on_lost` run on the server's loop."""

    def __init__(
        self,
        count: int,
        host: str,
        config: SessionConfig,
        on_report: Callable[[Report], None],
        on_lost: Callable[[int], None],
    ) -> None:
        self.count = count
        self.host = host
        self.config = config
        self.on_report = on_report
        self.on_lost = on_lost
        self.workers: list[_Worker] = []
        self.restarts = 0
        self._stopping = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._restarting: set[asyncio.TimerHandle] = set()

    @property
    def pids(self) -> list[int]:
        return [w.proc.pid for w in self.workers if w.alive]

    @property
    def handed(self) -> list[int]:
        """Transfers given to each live worker: how evenly the load is spread."""
        return [w.handed for w in self.workers if w.alive]

    async def start(self) -> None:
        """Start the workers and wait (at most READY_TIMEOUT) until each has said hello."""
        self._loop = asyncio.get_running_loop()
        for _ in range(self.count):
            self._spawn()
        ready = [w.ready for w in self.workers]
        _, late = await asyncio.wait(ready, timeout=READY_TIMEOUT)
        if late:  # requests queue in their sockets meanwhile
            log.warning("%d TFTP workers not ready after %.0f s", len(late), READY_TIMEOUT)

    def submit(self, handoff: Handoff, fd: int | None) -> bool:
        """Hand a transfer to the least busy worker; False: none took it (run it here)."""
        live = [w for w in self.workers if w.alive]
        if not live:
            return False
        worker = min(live, key=lambda w: len(w.tids))
        fds = [] if fd is None else [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [fd]))]
        try:
            worker.sock.sendmsg([handoff.encode()], fds)
        except OSError as exc:  # full (a stuck worker) or gone: the client retries
            log.debug("tftp worker %d did not take a transfer: %s", worker.proc.pid, exc)
            return False
        worker.tids.add(handoff.tid)
        worker.handed += 1
        return True

    async def stop(self) -> None:
        """Close every control socket (the workers exit on EOF), wait, kill stragglers."""
        self._stopping = True
        for handle in self._restarting:
            handle.cancel()
        workers, self.workers = self.workers, []
        for worker in workers:
            self._close(worker)
        for worker in workers:
            try:
                await asyncio.to_thread(worker.proc.wait, STOP_GRACE)
            except subprocess.TimeoutExpired:
                log.warning("tftp worker %d did not stop: killing it", worker.proc.pid)
                worker.proc.kill()
                await asyncio.to_thread(worker.proc.wait)

    # -- internals -----------------------------------------------------------

    def _spawn(self) -> None:
        assert self._loop is not None
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        config = json.dumps(asdict(self.config))
        # -P and cwd "/": `-m` would put the server's working directory first on the
        # worker's module path, and `corral serve` runs as root (review, session 6)
        argv = [sys.executable, "-P", "-m", "corral.services.tftp_worker"]
        argv += [str(theirs.fileno()), str(os.getpid()), self.host, config]
        try:
            proc = subprocess.Popen(argv, pass_fds=[theirs.fileno()], env=_worker_env(), cwd="/")
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        ours.setblocking(False)
        worker = _Worker(proc, ours)
        self.workers.append(worker)
        self._loop.add_reader(ours.fileno(), self._on_readable, worker)
        log.debug("tftp worker %d started", proc.pid)

    def _on_readable(self, worker: _Worker) -> None:
        while worker.alive:
            try:
                data = worker.sock.recv(MAX_MESSAGE)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                data = b""
            if not data:
                self._lost(worker)
                return
            try:
                report = Report.decode(data)
            except (ValueError, TypeError, KeyError) as exc:  # a broken worker: replace it
                log.error("tftp worker %d sent an unreadable report: %s", worker.proc.pid, exc)
                self._lost(worker)
                return
            if not worker.ready.done():
                worker.ready.set_result(None)
            for ended in report.ended:
                worker.tids.discard(ended.tid)
            self.on_report(report)

    def _lost(self, worker: _Worker) -> None:
        """The worker died (or closed its end): fail its transfers, reap it, start another."""
        self._close(worker)
        if worker in self.workers:
            self.workers.remove(worker)
        if worker.proc.poll() is None:
            worker.proc.kill()
        code = worker.proc.wait()
        log.warning(
            "tftp worker %d exited (%s) with %d transfers: restarting it",
            worker.proc.pid,
            code,
            len(worker.tids),
        )
        for tid in sorted(worker.tids):
            self.on_lost(tid)
        worker.tids.clear()
        if self._stopping or self._loop is None:
            return
        self.restarts += 1
        early = time.monotonic() - worker.started < RESTART_BACKOFF
        if early:  # crashing at start (a broken install?): do not spin
            self._restart_later()
        else:
            self._restart()

    def _restart_later(self) -> None:
        assert self._loop is not None
        self._restarting.add(self._loop.call_later(RESTART_BACKOFF, self._restart))

    def _restart(self) -> None:
        self._restarting = {h for h in self._restarting if not h.cancelled()}
        if self._stopping:
            return
        try:
            self._spawn()
        except OSError as exc:  # out of processes or descriptors: try again, serve meanwhile
            log.warning("cannot start a TFTP worker (%s): retrying in %.0f s", exc, RESTART_BACKOFF)
            self._restart_later()

    def _close(self, worker: _Worker) -> None:
        if not worker.alive:
            return
        worker.alive = False
        if not worker.ready.done():
            worker.ready.set_result(None)
        if self._loop is not None:
            self._loop.remove_reader(worker.sock.fileno())
        worker.sock.close()


def _worker_env() -> dict[str, str]:
    """This environment, with corral importable however this process found it: a source
    checkout's directory goes on PYTHONPATH, an installed package's site directory never
    does (PYTHONPATH comes before the standard library, which it must not shadow)."""
    env = dict(os.environ)
    src = str(Path(corral.__file__).resolve().parent.parent)
    if src not in _site_dirs():
        env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH", "")) if p)
    return env


def _site_dirs() -> set[str]:
    dirs = [*site.getsitepackages(), site.getusersitepackages()]
    return {str(Path(d).resolve()) for d in dirs}
