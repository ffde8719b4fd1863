"""What crosses from the TFTP listener to a worker, and what stays with the listener."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import pytest

from corral.protocols.tftp import BytesSource, NoRollover, OpenFileSource
from corral.protocols.tftp.files import NetasciiSource
from corral.protocols.tftp.session import SessionConfig
from corral.services.tftp_handoff import MAX_INLINE, Ended, Handoff, Report, passable


def test_a_handoff_survives_encoding_with_nul_bytes_in_the_file() -> None:
    handoff = Handoff(7, ("10.0.0.9", 2001), b"\x00\x01a\x00octet\x00", False, b"a\0b\0")
    assert Handoff.decode(handoff.encode()) == handoff
    bare = Handoff(8, ("10.0.0.9", 2002), b"\x00\x01b\x00octet\x00")
    assert Handoff.decode(bare.encode()) == bare


def test_a_report_survives_encoding_and_an_empty_one_is_false() -> None:
    report = Report(3, 4284, 1, [Ended(7, True, True, "peer error 0: x", 2), Ended(8, False)])
    assert Report.decode(report.encode()) == report
    assert not Report() and Report(ended=[Ended(1, False)])


def test_regular_files_pass_as_descriptors_rendered_ones_as_bytes(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"x" * 100)
    source = OpenFileSource(os.open(path, os.O_RDONLY))
    try:
        assert passable(source) == (source.fileno(), None, True)
        assert passable(NoRollover(source)) == (source.fileno(), None, False)
    finally:
        source.close()
    assert passable(source) is None  # closed: nothing to hand over
    assert passable(BytesSource(b"cfg")) == (None, b"cfg", True)
    assert passable(NoRollover(BytesSource(b"cfg"))) == (None, b"cfg", False)


def test_what_cannot_cross_stays_with_the_listener() -> None:
    assert passable(BytesSource(b"x" * (MAX_INLINE + 1))) is None
    assert passable(NetasciiSource(BytesSource(b"a\nb"))) is None


def test_a_full_report_fits_one_message_whatever_the_peers_wrote() -> None:
    """Peers choose their ERROR text; a report the listener cannot read would leak slots."""
    from corral.services.tftp_handoff import MAX_MESSAGE
    from corral.services.tftp_worker import ENDED_PER_REPORT, MAX_ERROR

    error = "\u00ff" * MAX_ERROR  # 6 bytes each in JSON: the worst case
    ended = [Ended(2**40 + i, True, False, error, 5) for i in range(ENDED_PER_REPORT)]
    report = Report(10**12, 10**15, 10**9, ended)
    assert len(report.encode()) < MAX_MESSAGE // 2


def test_a_handoff_whose_descriptor_did_not_arrive_fails_and_serves_nothing() -> None:
    """A real worker gets a request for a file by descriptor, but no descriptor came with
    it (a worker out of descriptors drops it): the transfer fails, nothing is sent."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    argv = [sys.executable, "-P", "-m", "corral.services.tftp_worker", str(theirs.fileno()),
            str(os.getpid()), "127.0.0.1", json.dumps(asdict(SessionConfig()))]  # fmt: skip
    proc = subprocess.Popen(argv, pass_fds=[theirs.fileno()])
    theirs.close()
    try:
        ours.settimeout(30)
        assert not Report.decode(ours.recv(65536))  # its hello
        client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        client.bind(("127.0.0.1", 0))
        rrq = b"\x00\x01vmlinuz\x00octet\x00"
        ours.send(Handoff(7, client.getsockname(), rrq).encode())  # no inline, no fd
        report = Report.decode(ours.recv(65536))
        assert [(e.tid, e.failed, e.error) for e in report.ended] == [
            (7, True, "bad handoff: no file")
        ]
        client.settimeout(0.5)
        with pytest.raises(TimeoutError):
            client.recv(2048)  # no DATA block, not even an empty one
        client.close()
    finally:
        ours.close()  # EOF: the worker stops
        proc.wait(30)
