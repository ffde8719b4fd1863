"""`pid_alive` says whether a process still runs: a killed child that its parent has not
reaped yet (a zombie) does not, so waiting for a kill -9 does not wait for the reaping."""

from __future__ import annotations

import os
import signal
import subprocess
import time

from corral.lab.lab import cmdline_of, pid_alive, stop_pid


def test_a_killed_unreaped_child_is_not_alive() -> None:
    child = subprocess.Popen(["sleep", "60"])
    try:
        assert pid_alive(child.pid)
        os.kill(child.pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while pid_alive(child.pid):  # the zombie is there all along: nobody reaps it here
            assert time.monotonic() < deadline, "a zombie counted as alive"
            time.sleep(0.05)
        with open(f"/proc/{child.pid}/stat") as stat:  # still unreaped: its entry remains
            assert stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    finally:
        child.kill()
        assert child.wait(timeout=10) == -signal.SIGKILL


def test_no_such_process_is_not_alive() -> None:
    assert not pid_alive(0) and not pid_alive(-1)


def test_stop_pid_leaves_no_zombie_of_a_child_behind() -> None:
    child = subprocess.Popen(["sleep", "60"])
    try:
        deadline = time.monotonic() + 10
        while "sleep" not in cmdline_of(child.pid):  # until the fork has exec'd sleep
            assert time.monotonic() < deadline, "sleep never started"
            time.sleep(0.01)
        assert stop_pid(child.pid, "sleep")
        assert not os.path.exists(f"/proc/{child.pid}")  # reaped, not a zombie
    finally:
        child.kill()  # a no-op once reaped
