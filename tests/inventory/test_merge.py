"""Profile merge: later profile wins, lists append, `~x` removes, dicts by key; origins."""

from __future__ import annotations

import pytest

from corral.inventory.errors import NotFound
from corral.inventory.merge import effective, merge_list
from corral.inventory.models import Node, Profile


def profiles(*specs: dict[str, object]) -> dict[str, Profile]:
    return {str(s["name"]): Profile.model_validate(s) for s in specs}


PROFILES = profiles(
    {
        "name": "default",
        "image": "debian12",
        "boot": "stateless",
        "kernel_args": ["console=tty0", "quiet"],
        "overlays": ["hostname", "hosts"],
        "networks": ["prov"],
        "power": {"driver": "ipmi", "username": "admin", "password": "pw1", "options": {"a": "1"}},
        "tags": {"site": "lab", "tier": "base"},
    },
    {
        "name": "compute",
        "image": "rocky9",
        "kernel_args": ["console=ttyS0,115200", "~quiet"],
        "overlays": ["slurm"],
        "networks": ["ib"],
        "power": {"address": "10.78.0.10", "options": {"b": "2"}},
        "tags": {"tier": "compute"},
    },
    {
        "name": "gpu",
        "kernel_args": ["nvidia.modeset=1", "console=tty0"],
        "power": {"username": "gpuadmin", "options": {"a": "9"}},
        "tags": {"gpu": "a100"},
    },
)


def test_merge_list_appends_skips_repeats_and_removes() -> None:
    assert merge_list(["a", "b"], ["c", "a"]) == ["a", "b", "c"]
    assert merge_list(["a", "b", "c"], ["~b", "d"]) == ["a", "c", "d"]
    assert merge_list(["a"], ["~zzz"]) == ["a"]
    assert merge_list([], ["~a", "a"]) == ["a"]


def test_later_profile_wins_and_lists_append() -> None:
    node = Node.model_validate({"name": "n1", "profiles": ["default", "compute", "gpu"]})
    eff = effective(node, PROFILES)
    s = eff.settings
    assert s.image == "rocky9"
    assert s.boot == "stateless"
    assert s.kernel_args == ["console=tty0", "console=ttyS0,115200", "nvidia.modeset=1"]
    assert s.overlays == ["hostname", "hosts", "slurm"]
    assert s.networks == ["prov", "ib"]
    assert s.tags == {"site": "lab", "tier": "compute", "gpu": "a100"}
    p = s.power
    assert (p.driver, p.address, p.username) == ("ipmi", "10.78.0.10", "gpuadmin")
    assert p.password is not None and p.password.get_secret_value() == "pw1"
    assert p.options == {"a": "9", "b": "2"}


def test_order_of_profiles_matters() -> None:
    node = Node.model_validate({"name": "n1", "profiles": ["compute", "default"]})
    s = effective(node, PROFILES).settings
    assert s.image == "debian12"
    assert s.tags["tier"] == "base"
    # quiet was removed by compute before default added it back
    assert s.kernel_args == ["console=ttyS0,115200", "console=tty0", "quiet"]


def test_node_overrides_last() -> None:
    node = Node.model_validate(
        {
            "name": "n1",
            "profiles": ["default", "compute"],
            "image": "custom",
            "kernel_args": ["~console=tty0", "debug"],
            "tags": {"site": "dc2"},
            "power": {"password": "nodepw"},
        }
    )
    eff = effective(node, PROFILES)
    assert eff.settings.image == "custom"
    assert eff.settings.kernel_args == ["console=ttyS0,115200", "debug"]
    assert eff.settings.tags["site"] == "dc2"
    pw = eff.settings.power.password
    assert pw is not None and pw.get_secret_value() == "nodepw"
    assert eff.origin("image") == "node"
    assert eff.origin("kernel_args") == "profile:default,profile:compute,node"
    assert eff.origin("tags.site") == "node"
    assert eff.origin("tags.tier") == "profile:compute"
    assert eff.origin("power.password") == "node"


def test_origins() -> None:
    node = Node.model_validate({"name": "n1", "profiles": ["default", "compute", "gpu"]})
    eff = effective(node, PROFILES)
    assert eff.origin("image") == "profile:compute"
    assert eff.origin("boot") == "profile:default"
    assert eff.origin("kernel_args") == "profile:default,profile:compute,profile:gpu"
    assert eff.origin("networks") == "profile:default,profile:compute"
    assert eff.origin("tags.site") == "profile:default"
    assert eff.origin("tags.gpu") == "profile:gpu"
    assert eff.origin("power.driver") == "profile:default"
    assert eff.origin("power.address") == "profile:compute"
    assert eff.origin("power.username") == "profile:gpu"
    assert eff.origin("power.options.a") == "profile:gpu"
    assert eff.origin("power.options.b") == "profile:compute"
    assert eff.origin("disk") == "default"


def test_node_without_profiles() -> None:
    eff = effective(Node.model_validate({"name": "n1", "image": "x"}), {})
    assert eff.settings.image == "x" and eff.origin("image") == "node"
    assert eff.settings.kernel_args == []


def test_missing_profile() -> None:
    with pytest.raises(NotFound, match="node n1: profile 'nope' does not exist"):
        effective(Node.model_validate({"name": "n1", "profiles": ["nope"]}), PROFILES)
