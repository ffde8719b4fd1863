"""`corral board`, `corral power` and `corral console` for board nodes, end to end: a real
store, the CLI, and FakeBmcd (tests/power/fake_bmcd.py, a fake of bmcd 2.x) in a thread."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import select
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from corral.actions import LocalActions
from corral.app import Corral
from corral.config import Settings
from tests.power.fake_bmcd import FakeBmcd, fake_bmcd_thread
from tests.power.peers import VENV_BIN, stop, wait_until
from tests.power.test_cli import corral


@pytest.fixture
def board(corral_home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeBmcd]:
    with fake_bmcd_thread(password="pw-7Hq2-bmc") as bmc:
        monkeypatch.setenv("TPI_PASSWORD", bmc.password)
        assert corral("node", "add", "tp[1-4]").exit_code == 0
        for slot in range(1, 5):
            result = corral(
                "node", "set", f"tp{slot}", "--power-driver", "turingpi",
                "--bmc-address", bmc.url, "--bmc-username", "root",
                "--bmc-password-env", "TPI_PASSWORD", "--bmc-slot", str(slot),
            )  # fmt: skip
            assert result.exit_code == 0, result.output
        assert corral("node", "add", "m1").exit_code == 0
        assert corral("node", "set", "m1", "--power-driver", "manual").exit_code == 0
        yield bmc


def test_power_on_and_status_of_board_slots_work_as_for_any_driver(board: FakeBmcd) -> None:
    result = corral("power", "on", "tp[2-3]")
    assert result.exit_code == 0, result.output
    assert board.power == {1: 0, 2: 1, 3: 1, 4: 0}
    rows = json.loads(corral("power", "status", "tp[1-4]", "-o", "json").stdout)
    assert [r["result"] for r in rows] == ["off", "on", "on", "off"]
    assert board.password not in result.output


def test_flash_writes_the_image_and_leaves_the_node_off(board: FakeBmcd, tmp_path: Path) -> None:
    image = tmp_path / "rk1.img"
    image.write_bytes(b"\x5a" * (2 * 1024 * 1024 + 17))
    board.power[2] = 1
    result = corral("board", "flash", "tp2", "--image", str(image), "--yes")
    assert result.exit_code == 0, result.output
    assert bytes(board.written) == image.read_bytes()
    assert board.transfer["sha256"] == hashlib.sha256(image.read_bytes()).hexdigest()
    assert board.power[2] == 0
    assert "the node is off: corral power on tp2" in result.stdout
    assert "upload" in result.stderr and board.password not in result.output


def test_a_driver_without_the_capability_is_refused_at_once(
    board: FakeBmcd, tmp_path: Path
) -> None:
    image = tmp_path / "x.img"
    image.write_bytes(b"x")
    result = corral("board", "flash", "m1", "--image", str(image), "--yes")
    assert result.exit_code == 1
    assert "driver manual cannot flash (node m1)" in result.stderr
    result = corral("board", "usb", "m1", "--mode", "device")
    assert result.exit_code == 1 and "driver manual cannot usb" in result.stderr


def test_usb_mode_is_set_and_shown(board: FakeBmcd) -> None:
    result = corral("board", "usb", "tp3", "--mode", "flash", "--route", "usb-a", "-o", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "node": "tp3", "usb_owner": "Node 3", "mode": "flash", "route": "usb-a",
    }  # fmt: skip
    assert board.usb == {"node": 2, "mode": 2, "route": 0}


def test_mass_storage_and_uart(board: FakeBmcd) -> None:
    assert corral("board", "mass-storage", "tp4").exit_code == 0
    assert board.msd == [3]
    assert corral("board", "uart", "tp1", "--send", "root").exit_code == 0
    assert board.uart_in[0] == ["root"]
    board.uart_out[0] = "login: "
    assert corral("board", "uart", "tp1").stdout == "login: "


def test_capabilities_say_what_each_driver_can_do(board: FakeBmcd) -> None:
    rows = json.loads(corral("board", "capabilities", "tp1,m1", "-o", "json").stdout)
    by_node = {r["node"]: r for r in rows}
    assert {"flash", "usb", "mass-storage", "console", "on"} <= set(by_node["tp1"]["capabilities"])
    assert "flash" not in by_node["m1"]["capabilities"]


def test_board_refuses_server_in_one_line(board: FakeBmcd) -> None:
    result = corral("--server", "http://127.0.0.1:9", "--token", "t", "board", "usb", "tp1")
    assert result.exit_code == 1
    assert "run it on the server, without --server" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_ctrl_c_cancels_a_flash_on_the_board_and_leaves_the_node_off(
    board: FakeBmcd, tmp_path: Path
) -> None:
    image = tmp_path / "big.img"
    image.write_bytes(b"\x00" * (8 * 1024 * 1024))
    board.hold_upload = asyncio.Event()  # the upload waits after its first chunk
    argv = [str(VENV_BIN / "corral"), "board", "flash", "tp1", "--image", str(image), "--yes"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_until(lambda: len(board.written) > 0 or proc.poll() is not None, 60, "the upload")
        assert proc.poll() is None, proc.communicate()
        board.power[1] = 1  # on: the flash must leave it off
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        stop(proc)
    assert proc.returncode == 130, err
    assert board.cancelled == [board.transfer["handle"]]
    assert board.power[1] == 0
    assert b"flash of tp1 cancelled" in err and b"tp1 powered off" in err


def test_console_of_a_slot_is_the_bmcs_serial_websocket(board: FakeBmcd) -> None:
    proc = subprocess.Popen(
        [str(VENV_BIN / "corral"), "console", "tp2"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        proc.stdin.write(b"uname -a\r")
        proc.stdin.flush()
        seen = b""
        deadline = time.monotonic() + 60
        while b"echo: uname -a\r" not in seen and time.monotonic() < deadline:
            ready, _, _ = select.select([proc.stdout], [], [], 1)
            if ready:
                seen += os.read(proc.stdout.fileno(), 4096)
        _, err = proc.communicate(timeout=60)  # closes stdin: end of input ends the console
    finally:
        stop(proc)
    assert seen == b"echo: uname -a\r"
    assert bytes(board.serial_in[1]) == b"uname -a\r"
    assert proc.returncode == 0, err
    assert b"Turing Pi serial" in err


def test_uart_of_a_driver_whose_console_is_not_a_board_says_so(board: FakeBmcd) -> None:
    corral("node", "add", "n1")
    corral("node", "set", "n1", "--power-driver", "ipmi", "--bmc-address", "127.0.0.1:9")
    result = corral("board", "uart", "n1")
    assert result.exit_code == 1
    assert "driver ipmi cannot console through corral board (node n1)" in result.stderr


def test_power_points_board_actions_to_corral_board(board: FakeBmcd) -> None:
    result = corral("power", "flash", "tp1")
    assert result.exit_code == 2  # not a power command at all
    results = LocalActions(Corral(Settings.from_env())).power(["tp1"], "flash", 1)
    assert results[0].error == "flash is not a power action (use `corral board flash`)"
