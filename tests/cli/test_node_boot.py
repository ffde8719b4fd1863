"""`corral node show` with scripts, `corral node reinstall` and `corral node service`."""

from __future__ import annotations

import textwrap
from pathlib import Path

import yaml

from tests.cli.conftest import Run
from tests.cli.test_cli import ok

CLUSTER = textwrap.dedent(
    """\
    networks:
    - {name: prov, cidr: 10.77.0.0/24}
    profiles:
    - name: disk
      networks: [prov]
      boot: stateful
      disk:
        device: /dev/vda
        partitions: [{label: root, format: xfs, mount: /}]
      scripts:
        pre: echo profile pre
    nodes:
    - name: n1
      profiles: [disk]
      scripts:
        post: |
          echo one
          echo two
    - name: n2
      networks: [prov]
    """
)


def applied(corral: Run, tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text(CLUSTER)
    ok(corral("apply", "-f", str(tmp_path / "c.yaml")))


def test_node_show_prints_each_script_and_where_it_comes_from(corral: Run, tmp_path: Path) -> None:
    applied(corral, tmp_path)
    table = ok(corral("node", "show", "n1")).out
    rows = {line.split("│")[0].strip(): line for line in table.splitlines() if "│" in line}
    assert "echo one ... (2 lines)" in rows["scripts.post"]
    assert rows["scripts.post"].rstrip().endswith("node")
    assert rows["scripts.pre"].rstrip().endswith("profile:disk")
    data = yaml.safe_load(ok(corral("node", "show", "n1", "-o", "yaml")).out)
    assert data["effective"]["scripts.post"]["value"] == "echo one\necho two\n"
    exported = yaml.safe_load(ok(corral("export")).out)
    (n1,) = [n for n in exported["nodes"] if n["name"] == "n1"]
    assert n1["scripts"] == {"post": "echo one\necho two\n"}


def test_reinstall_and_service_mode(corral: Run, tmp_path: Path) -> None:
    applied(corral, tmp_path)
    assert "reinstall at their next network boot" in ok(corral("node", "reinstall", "n1")).err
    refused = corral("node", "reinstall", "n2")
    assert refused.code == 1
    assert "n2 is not stateful" in refused.error_line
    assert "corral ssh NODE" in ok(corral("node", "service", "n[1-2]")).err
    assert "leave service mode" in ok(corral("node", "service", "n1", "--off")).err
    assert corral("node", "service", "ghost").code == 1


def test_stateful_without_a_disk_is_refused_with_what_to_do(corral: Run, tmp_path: Path) -> None:
    applied(corral, tmp_path)
    refused = corral("node", "set", "n2", "--boot", "stateful")
    assert refused.code == 1
    assert "no disk layout is set: add `disk:`" in refused.error_line
