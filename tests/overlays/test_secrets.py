"""No BMC password reaches a template, a rendered file or an archive."""

from __future__ import annotations

import dataclasses

import pytest

from corral.config import Paths
from corral.inventory.index import Inventory
from corral.overlays import overlay_archive
from corral.overlays.errors import TemplateFailure
from corral.overlays.render import OverlayRenderer
from tests.overlays.inventory import BMC_PASSWORD
from tests.overlays.test_render import user_overlay


def all_values(obj: object, depth: int = 0) -> list[str]:
    """Every string reachable through the context's public fields."""
    if depth > 8:
        return []
    if isinstance(obj, str):
        return [obj]
    if isinstance(obj, dict):
        return [
            s for k, v in obj.items() for s in all_values(k, depth + 1) + all_values(v, depth + 1)
        ]
    if isinstance(obj, tuple | list):
        return [s for v in obj for s in all_values(v, depth + 1)]
    if dataclasses.is_dataclass(obj):
        return [
            s
            for f in dataclasses.fields(obj)
            if not f.name.startswith("_")
            for s in all_values(getattr(obj, f.name), depth + 1)
        ]
    return [str(obj)]


def test_fixture_node_really_has_a_password(inv: Inventory) -> None:
    password = inv.effective("n1").settings.power.password
    assert password is not None and password.get_secret_value() == BMC_PASSWORD


def test_context_has_no_password(inv: Inventory, fixed_paths: Paths) -> None:
    ctx = OverlayRenderer(fixed_paths).context(inv, "n1")
    values = all_values(ctx.node) + all_values(ctx.cluster) + all_values(ctx.cluster.hosts)
    assert not [v for v in values if BMC_PASSWORD in v]
    assert BMC_PASSWORD not in repr(ctx)
    assert not hasattr(ctx.node, "power")


def test_no_password_in_rendered_files_or_archive(inv: Inventory, fixed_paths: Paths) -> None:
    renderer = OverlayRenderer(fixed_paths)
    for node in inv.nodes:
        rendered = renderer.render(inv, node)
        assert rendered.files
        for path, file in rendered.files.items():
            assert BMC_PASSWORD.encode() not in file.data, path
        assert BMC_PASSWORD.encode() not in overlay_archive(rendered)


@pytest.mark.parametrize(
    "probe",
    [
        "{{ node._keys }}",
        "{{ cluster._hosts }}",
        "{{ node.__class__.__init__.__globals__ }}",
        "{{ node.tags.__class__.__subclasses__() }}",
    ],
)
def test_templates_cannot_dig_for_it(probe: str, inv: Inventory, fixed_paths: Paths) -> None:
    user_overlay(fixed_paths, "probe", {"etc/p.j2": probe + "\n"})
    with pytest.raises(TemplateFailure, match=r"overlay probe: etc/p\.j2 line 1"):
        OverlayRenderer(fixed_paths).render(inv, "n1", ["probe"])
