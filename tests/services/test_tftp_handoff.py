"""What crosses from the TFTP listener to a worker, and what stays with the listener."""

from __future__ import annotations

import os
from pathlib import Path

from corral.protocols.tftp import BytesSource, NoRollover, OpenFileSource
from corral.protocols.tftp.files import NetasciiSource
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
