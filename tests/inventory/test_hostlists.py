"""Hostlist ranges, read the way Slurm sites write them."""

from __future__ import annotations

import pytest

from corral.inventory.errors import InventoryError
from corral.inventory.hostlists import compress, expand


def test_zero_padded_range() -> None:
    names = expand("node[001-128]")
    assert len(names) == 128
    assert names[:2] == ["node001", "node002"] and names[-1] == "node128"


def test_two_ranges_in_one_name() -> None:
    names = expand("rack[1-2]-n[01-16]")
    assert len(names) == 32
    assert names[:2] == ["rack1-n01", "rack1-n02"]
    assert names[15:17] == ["rack1-n16", "rack2-n01"]
    assert names[-1] == "rack2-n16"


def test_comma_lists() -> None:
    assert expand("a,b,c") == ["a", "b", "c"]
    assert expand("n[1-3,7,9-10]") == ["n1", "n2", "n3", "n7", "n9", "n10"]
    assert expand("login1,n[01-02]") == ["login1", "n01", "n02"]
    assert expand("single") == ["single"]


def test_duplicates_removed() -> None:
    assert expand("n[1-3],n2") == ["n1", "n2", "n3"]


@pytest.mark.parametrize("bad", ["n[1-", "n[3-1]", "n]1[", "n[a-c]", "n[1-2", "n[[1-2]]"])
def test_bad_patterns(bad: str) -> None:
    with pytest.raises(InventoryError, match="is not a valid hostlist") as info:
        expand(bad)
    assert repr(bad) in str(info.value)


@pytest.mark.parametrize("empty", ["", "  "])
def test_empty(empty: str) -> None:
    with pytest.raises(InventoryError, match="empty node list"):
        expand(empty)


def test_too_many() -> None:
    # python-hostlist refuses it first ("range too large"): a clear error either way
    with pytest.raises(InventoryError, match=r"'n\[1-2000000\]'"):
        expand("n[1-2000000]")


def test_compress_round_trip() -> None:
    names = expand("rack[1-2]-n[01-16],login1")
    assert sorted(expand(compress(names))) == sorted(names)
    assert compress(expand("n[001-064]")) == "n[001-064]"
