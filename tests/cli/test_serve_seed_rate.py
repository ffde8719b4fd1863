"""`corral serve --seed-rate`: the cap reaches the seeder `corral serve` builds."""

from __future__ import annotations

from typing import Any

import pytest

import corral.services.serve as serve_module
from corral.services.seeder import UNCHOKE_ALL
from corral.services.serve import ServeOptions
from tests.cli.conftest import Run


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> list[ServeOptions]:
    """The options `corral serve` would run with; nothing is started."""
    got: list[ServeOptions] = []

    async def record(corral: Any, options: ServeOptions) -> None:
        got.append(options)

    monkeypatch.setattr(serve_module, "serve_forever", record)
    return got


@pytest.mark.parametrize(("argv", "rate"), [([], 0), (["--seed-rate", "1250000"], 1250000)])
def test_the_seed_rate_caps_the_seeder_and_keeps_every_peer_unchoked(
    corral: Run, captured: list[ServeOptions], argv: list[str], rate: int
) -> None:
    corral("init")
    base = ["serve", "--address", "127.0.0.1", "--no-dhcp", "--no-dns", "--no-tftp"]
    result = corral(*base, *argv)
    assert result.code == 0, result.err
    (options,) = captured
    assert options.seeder_settings.upload_rate == rate
    assert options.seeder_settings.unchoke_slots == UNCHOKE_ALL


def test_a_negative_seed_rate_is_refused_in_one_line(corral: Run) -> None:
    result = corral("serve", "--seed-rate", "-1")
    assert result.code == 2
    assert "--seed-rate" in result.err
