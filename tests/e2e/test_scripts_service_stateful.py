"""Real VMs (TCG) with the tiny image: boot scripts, service mode over SSH, an xfs install.

Each test boots one VM; the tiny image (busybox and a Debian kernel) suffices for
all of them: its init prints `corral-node-up ... root=DEVICE` on the console.
"""

from __future__ import annotations

import subprocess
import sys
import time
from typing import Any

import pytest

from corral.actions import LocalActions
from corral.lab.image import BOOTED_MARKER
from corral.lab.lab import LabState
from corral.lab.netns import ns_argv
from corral.overlays.adminkey import ensure_admin_key
from corral.power.run import Action
from tests.e2e.conftest import LabFactory, boot, serial
from tests.e2e.polling import power, wait_for

pytestmark = [pytest.mark.netns, pytest.mark.vm, pytest.mark.slow, pytest.mark.timeout(600)]


def script_events(actions: LocalActions, node: str) -> list[dict[str, Any]]:
    return [
        e["data"] for e in actions.events(0, 1000) if e["kind"] == "script" and e["node"] == node
    ]


def test_a_post_script_leaves_its_marker_in_the_booted_system(lab: LabFactory) -> None:
    the_lab, state = lab(nodes=1)
    actions = LocalActions(the_lab.corral)
    post = (
        'echo "post ran on $CORRAL_NODE" > /etc/corral-post-marker\n'
        "echo 'cat /etc/corral-post-marker > /dev/console' >> /etc/init.d/rcS\n"
        "echo post-output-line\n"
    )
    actions.set_profile("lab", {"scripts": {"post": post}})
    report = boot(the_lab, state, concurrency=1)
    assert report.failed == [], serial(state, "lab01")[-3000:]
    # printed by the booted system's own init, from the file the post script wrote
    wait_for(
        "the post marker on the console", lambda: "post ran on lab01" in serial(state, "lab01")
    )
    (event,) = script_events(actions, "lab01")
    assert (event["script"], event["exit"]) == ("post", 0)
    assert event["output"] == "post-output-line\n"


def test_a_failing_pre_script_fails_the_boot_with_its_last_lines(lab: LabFactory) -> None:
    the_lab, state = lab(nodes=1)
    actions = LocalActions(the_lab.corral)
    actions.set_nodes(
        ["lab01"], {"scripts": {"pre": "echo checking\necho 'no power budget' >&2\nexit 3\n"}}
    )
    report = boot(the_lab, state, concurrency=1)
    assert report.finished == {"lab01": "failed"}, report.finished
    (row,) = actions.status(["lab01"])
    assert row["state"] == "failed"
    assert "pre script failed (exit 3): checking|no power budget|" in row["error"], row
    assert "downloading" not in row["times"]  # pre runs before the image download
    (event,) = script_events(actions, "lab01")
    assert (event["script"], event["exit"]) == ("pre", 3)
    assert event["output"] == "checking\nno power budget\n"


def corral_ssh(state: LabState, node: str, *command: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "corral.cli", "ssh", node, *command]
    return subprocess.run(
        ns_argv(state.netns, argv),
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=120,
        check=False,
    )


def test_service_mode_lets_root_in_over_ssh_with_the_admin_key(lab: LabFactory) -> None:
    the_lab, state = lab(nodes=1)
    ensure_admin_key(the_lab.corral.settings.paths)
    actions = LocalActions(the_lab.corral)
    actions.service_mode(["lab01"])
    power(the_lab, "lab01", Action.ON)
    wait_for("lab01 in service mode", lambda: actions.status(["lab01"])[0]["state"] == "service")
    wait_for("dropbear", lambda: "ssh root@" in serial(state, "lab01"), timeout=30)
    # strict host-key checking against corral's known_hosts: dropbear shows the overlay's key
    result = wait_for(
        "a login over ssh",
        lambda: (
            (
                r := corral_ssh(state, "lab01", "cat", "/proc/cmdline", "/etc/corral-kernel")
            ).returncode
            == 0
            and r
        ),
        timeout=60,
    )
    assert "corral.boot=service" in result.stdout, result
    assert "REMOTE HOST IDENTIFICATION" not in result.stderr


def test_a_stateful_node_installs_onto_an_xfs_root_and_installs_again(lab: LabFactory) -> None:
    the_lab, state = lab(nodes=1, stateful=True)
    actions = LocalActions(the_lab.corral)
    disk = {
        "device": "/dev/vda",
        "partitions": [
            {"label": "swap", "size_mib": 64, "format": "swap"},
            {"label": "root", "format": "xfs", "mount": "/"},
        ],
    }
    actions.set_profile("lab", {"disk": disk, "scripts": {"post": "grep ' / ' /proc/mounts\n"}})
    report = boot(the_lab, state, concurrency=1)
    log = serial(state, "lab01")
    assert report.failed == [], log[-3000:]
    assert f"{BOOTED_MARKER} hostname=lab01 " in log
    assert "root=/dev/vda2 " in log, log[-2000:]
    (event,) = script_events(actions, "lab01")
    assert event["output"].split()[:3] == ["/dev/vda2", "/", "xfs"], event
    # the tiny image has no GRUB: the next boot installs again, onto the disk corral partitioned
    # (with no `wipe` setting, only a blank disk or corral's own may be partitioned)
    first_boot = time.time()
    power(the_lab, "lab01", Action.RESET)
    wait_for(
        "the second install",
        lambda: (
            (r := actions.status(["lab01"])[0])["state"] in ("booted", "failed")
            and r["since"] > first_boot
        ),
    )
    (row,) = actions.status(["lab01"])
    assert row["state"] == "booted", row
    assert len(script_events(actions, "lab01")) == 2
