"""Rendering rules: templates vs copies, modes, skipping, file(), user overrides, errors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from corral.config import Paths
from corral.inventory.errors import NotFound
from corral.inventory.index import Inventory
from corral.overlays import sources
from corral.overlays.errors import OverlayError, OverlayNotFound, TemplateFailure
from corral.overlays.render import OverlayRenderer, render_node


def user_overlay(paths: Paths, name: str, files: dict[str, str], mode: int = 0o644) -> Path:
    root = paths.home / "overlays" / name
    for rel, text in files.items():
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        target.chmod(mode)
    return root


def test_node_without_overlays_gets_the_system_set(
    renderer: OverlayRenderer, inv: Inventory
) -> None:
    rendered = renderer.render(inv, "n1")
    assert rendered.overlays == sources.OVERLAY_SETS["system"]
    assert rendered.files["/etc/hostname"].data == b"n1\n"


def test_node_overlay_list_is_used(renderer: OverlayRenderer, inv: Inventory) -> None:
    inv.nodes["n1"] = inv.nodes["n1"].model_copy(update={"overlays": ["hostname", "fstab"]})
    assert set(renderer.render(inv, "n1").files) == {"/etc/hostname", "/etc/fstab"}


def test_user_overlay_copies_renders_and_keeps_modes(
    renderer: OverlayRenderer, inv: Inventory, paths: Paths
) -> None:
    root = user_overlay(paths, "site", {"etc/motd.j2": "Welcome to {{ node.fqdn }}\n"})
    (root / "usr/local/bin").mkdir(parents=True)
    (root / "usr/local/bin/hello").write_bytes(b"#!/bin/sh\necho hi\n")
    (root / "usr/local/bin/hello").chmod(0o750)
    rendered = renderer.render(inv, "n2", ["site"])
    assert rendered.files["/etc/motd"].data == b"Welcome to n2.demo.example\n"
    assert rendered.files["/usr/local/bin/hello"] == (b"#!/bin/sh\necho hi\n", 0o750, "")


def test_user_overlay_overrides_builtin(
    renderer: OverlayRenderer, inv: Inventory, paths: Paths
) -> None:
    user_overlay(paths, "hostname", {"etc/hostname.j2": "{{ node.fqdn }}\n"})
    rendered = renderer.render(inv, "n1")
    assert rendered.files["/etc/hostname"].data == b"n1.demo.example\n"
    found = sources.find(paths, "hostname")
    assert (found.origin, found.hides) == ("user", "builtin")


def test_user_overlay_can_replace_a_set(
    renderer: OverlayRenderer, inv: Inventory, paths: Paths
) -> None:
    user_overlay(paths, "system", {"etc/issue": "corral\n"})
    assert set(renderer.render(inv, "n1").files) == {"/etc/issue"}


def test_template_printing_nothing_skips_its_file(
    renderer: OverlayRenderer, inv: Inventory, paths: Paths
) -> None:
    text = "{% if node.stateful %}on disk\n{% endif %}"
    user_overlay(paths, "cond", {"etc/ondisk.j2": text})
    assert renderer.render(inv, "n2", ["cond"]).files["/etc/ondisk"].data == b"on disk\n"
    assert renderer.render(inv, "n1", ["cond"]).files == {}


def test_authorized_keys_is_skipped_without_keys(renderer: OverlayRenderer, inv: Inventory) -> None:
    inv.settings = inv.settings.model_copy(update={"ssh_authorized_keys": []})
    assert renderer.render(inv, "n1", ["authorized-keys"]).files == {}


def test_file_splits_output_with_modes(
    renderer: OverlayRenderer, inv: Inventory, paths: Paths
) -> None:
    text = (
        "{% for i in node.interfaces %}{{ file('if-' ~ i.device, mode=0o600) }}\n"
        "{{ i.ip }}\n{% endfor %}{{ file('/etc/abs', mode='0640') }}abs\n"
    )
    user_overlay(paths, "multi", {"etc/multi/main.j2": text})
    files = renderer.render(inv, "n1", ["multi"]).files
    assert files == {
        "/etc/multi/if-eth0": (b"10.77.0.11\n", 0o600, ""),
        "/etc/multi/if-ib0": (b"10.78.0.11\n", 0o600, ""),
        "/etc/abs": (b"abs\n", 0o640, ""),
    }


def test_file_owner_is_user_group_and_a_bad_owner_is_a_template_error(
    renderer: OverlayRenderer, inv: Inventory, paths: Paths
) -> None:
    user_overlay(paths, "own", {"etc/own.j2": "{{ file('k', owner='munge') }}x\n"})
    assert renderer.render(inv, "n1", ["own"]).files["/etc/k"].owner == "munge:munge"
    user_overlay(paths, "bad", {"etc/bad.j2": "{{ file('k', owner='root; rm') }}x\n"})
    with pytest.raises(TemplateFailure, match="not user:group"):
        renderer.render(inv, "n1", ["bad"])


def test_file_stays_inside_the_root(
    renderer: OverlayRenderer, inv: Inventory, paths: Paths
) -> None:
    user_overlay(paths, "up", {"etc/x.j2": "{{ file('../../../x') }}up\n"})
    assert set(renderer.render(inv, "n1", ["up"]).files) == {"/x"}
    user_overlay(paths, "bad", {"etc/x.j2": "{{ file('/') }}boom"})
    with pytest.raises(TemplateFailure, match=r"overlay bad: etc/x\.j2 line 1: .*outside"):
        renderer.render(inv, "n1", ["bad"])


def test_undefined_variable_names_overlay_file_and_line(
    renderer: OverlayRenderer, inv: Inventory, paths: Paths
) -> None:
    user_overlay(paths, "typo", {"etc/a.j2": "line one\n{{ node.name }}\n{{ node.hostnme }}\n"})
    with pytest.raises(TemplateFailure) as info:
        renderer.render(inv, "n1", ["typo"])
    assert str(info.value).startswith("overlay typo: etc/a.j2 line 3: ")
    assert "hostnme" in str(info.value)
    assert (info.value.overlay, info.value.path, info.value.line) == ("typo", "etc/a.j2", 3)


def test_undefined_top_level_name(renderer: OverlayRenderer, inv: Inventory, paths: Paths) -> None:
    user_overlay(paths, "typo", {"etc/a.j2": "{{ nodes }}\n"})
    with pytest.raises(
        TemplateFailure, match=r"overlay typo: etc/a\.j2 line 1: 'nodes' is undefined"
    ):
        renderer.render(inv, "n1", ["typo"])


def test_syntax_error_names_overlay_file_and_line(
    renderer: OverlayRenderer, inv: Inventory, paths: Paths
) -> None:
    user_overlay(paths, "broken", {"etc/b.j2": "ok\n{% for x in node.interfaces %}\n{{ x }\n"})
    with pytest.raises(TemplateFailure) as info:
        renderer.render(inv, "n1", ["broken"])
    message = str(info.value)
    assert message.startswith("overlay broken: etc/b.j2 line 3: syntax error:")


def test_error_in_included_template_names_that_file(
    renderer: OverlayRenderer, inv: Inventory, paths: Paths
) -> None:
    user_overlay(
        paths,
        "inc",
        {"etc/main.j2": "{% include 'lib/part.txt' %}\n", "lib/part.txt": "\n\n{{ missing }}\n"},
    )
    with pytest.raises(TemplateFailure, match=r"overlay inc: lib/part\.txt line 3: 'missing'"):
        renderer.render(inv, "n1", ["inc"])


def test_sandbox_blocks_python_internals(
    renderer: OverlayRenderer, inv: Inventory, paths: Paths
) -> None:
    user_overlay(paths, "evil", {"etc/e.j2": "{{ node.__class__.__mro__ }}\n"})
    with pytest.raises(TemplateFailure, match=r"overlay evil: etc/e\.j2 line 1"):
        renderer.render(inv, "n1", ["evil"])


def test_template_edit_is_picked_up(
    renderer: OverlayRenderer, inv: Inventory, paths: Paths
) -> None:
    root = user_overlay(paths, "live", {"etc/v.j2": "one\n"})
    assert renderer.render(inv, "n1", ["live"]).files["/etc/v"].data == b"one\n"
    (root / "etc/v.j2").write_text("two\n")
    os.utime(root / "etc/v.j2", (1, 1))
    assert renderer.render(inv, "n1", ["live"]).files["/etc/v"].data == b"two\n"


def test_later_overlay_wins_a_path(renderer: OverlayRenderer, inv: Inventory, paths: Paths) -> None:
    user_overlay(paths, "site", {"etc/hostname": "fixed\n"})
    rendered = renderer.render(inv, "n1", ["hostname", "site"])
    assert rendered.files["/etc/hostname"].data == b"fixed\n"
    assert rendered.origins["/etc/hostname"] == "site"


def test_unknown_overlay_and_node(renderer: OverlayRenderer, inv: Inventory) -> None:
    with pytest.raises(OverlayNotFound, match="'nope' does not exist"):
        renderer.render(inv, "n1", ["nope"])
    with pytest.raises(NotFound, match="node 'n9'"):
        renderer.render(inv, "n9")


def test_symlinks_are_refused(renderer: OverlayRenderer, inv: Inventory, paths: Paths) -> None:
    root = user_overlay(paths, "link", {"etc/a": "a\n"})
    (root / "etc/db").symlink_to(paths.home / "corral.db")
    with pytest.raises(OverlayError, match="etc/db is a symlink"):
        renderer.render(inv, "n1", ["link"])


def test_hosts_list_is_cached_across_nodes_and_unrelated_changes(
    renderer: OverlayRenderer, inv: Inventory
) -> None:
    for node in ("n1", "n2", "n3"):
        renderer.render(inv, node, ["hosts"])
    inv.nodes["n1"] = inv.nodes["n1"].model_copy(update={"image": "other"})
    renderer.render(inv, "n1", ["hosts"])
    assert renderer.hosts.builds == 1
    renderer.render(inv, "n1", ["hosts"], {"n2": {"cpus": 4, "reported": 1.0}})
    renderer.render(inv, "n2", ["hosts"], {"n2": {"cpus": 4, "reported": 1.0}})
    assert renderer.hosts.builds == 2  # a report with new facts: rebuilt once
    inv.nodes["n1"] = inv.nodes["n1"].model_copy(update={"tags": {"a": "b"}})
    renderer.render(inv, "n1", ["hosts"], {"n2": {"cpus": 4, "reported": 1.0}})
    assert renderer.hosts.builds == 3  # templates see tags, so a tag counts
    iface = inv.nodes["n3"].interfaces[0].model_copy(update={"ip": "10.77.0.13"})
    inv.nodes["n3"] = inv.nodes["n3"].model_copy(update={"interfaces": [iface]})
    hosts = renderer.render(inv, "n1", ["hosts"]).files["/etc/hosts"].data
    assert b"10.77.0.13\tn3.demo.example n3\n" in hosts
    assert renderer.hosts.builds == 4


def test_render_node_accepts_inventory_or_app(inv: Inventory, paths: Paths) -> None:
    class App:
        def read(self) -> Inventory:
            return inv

        def node_facts(self) -> dict[str, dict[str, object]]:
            return {}

    direct = render_node(inv, paths, "n2", ["hostname"])
    via_app = render_node(App(), paths, "n2", ["hostname"])
    assert direct.files == via_app.files == {"/etc/hostname": (b"n2\n", 0o644, "")}
