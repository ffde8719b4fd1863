"""The lazy command table matches the modules, and `--help` and `node list`
(through `--server` and on the local SQLite store) stay cheap to start: what
they import is checked, not timed."""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
import subprocess
import sys
from pathlib import Path

import click
import click.testing

import corral.cli
from corral.cli.main import LAZY_COMMANDS, cli
from corral.client import RemoteActions
from tests.services.conftest import LiveServer, live_server

from .conftest import run_cli_listing_modules

__all__ = ["live_server"]  # the fixture, used by name


def module_commands() -> dict[str, tuple[str, str]]:
    """What the modules really define: name -> (module, one-line help)."""
    found = {}
    for info in pkgutil.iter_modules(corral.cli.__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"corral.cli.{info.name}")
        for command in getattr(module, "COMMANDS", ()):
            found[command.name] = (info.name, command.get_short_help_str(limit=200))
    return found


def test_the_table_lists_every_command_with_its_module_and_help() -> None:
    assert module_commands() == LAZY_COMMANDS


def test_help_imports_no_command_module_database_or_models() -> None:
    code = (
        "import sys, io, contextlib\n"
        "from corral.cli.main import cli\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try: cli.main(['--help'], prog_name='corral')\n"
        "    except SystemExit: pass\n"
        "heavy = [m for m in sys.modules if m.startswith(('sqlalchemy', 'pydantic', 'aiohttp',"
        " 'corral.inventory', 'corral.store', 'corral.cli.node', 'rich'))]\n"
        "print(','.join(heavy))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == ""


def test_completion_scripts_come_from_click_for_each_shell() -> None:
    for shell, marker in (("bash", "complete -o nosort"), ("zsh", "compdef"), ("fish", "complete")):
        result = click.testing.CliRunner().invoke(cli, ["completion", shell])
        assert result.exit_code == 0, result.output
        assert "_CORRAL_COMPLETE" in result.output and marker in result.output


def test_completion_offers_the_commands() -> None:
    env = {"_CORRAL_COMPLETE": "bash_complete", "COMP_WORDS": "corral no", "COMP_CWORD": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "corral.cli"], env=env, capture_output=True, text=True, check=False
    )
    assert "plain,node" in done.stdout.replace("\n", ",")


def test_node_list_through_a_server_loads_no_database_library_and_no_models(
    live_server: LiveServer, tmp_path: Path
) -> None:
    api = RemoteActions(live_server.url, live_server.token)
    api.add_network({"name": "prov", "cidr": "10.78.0.0/24"})
    api.add_profile({"name": "rack", "networks": ["prov"], "image": "rocky", "boot": "service"})
    api.add_nodes(["n1"], {"profiles": ["rack"]}, mac="52:54:00:ab:cd:ef")
    api.add_nodes(["n2"], {"profiles": ["rack"]})
    env = {k: v for k, v in os.environ.items() if not k.startswith("CORRAL_")}
    env.update(COLUMNS="200", CORRAL_HOME=str(tmp_path / "client"))
    remote = {**env, "CORRAL_SERVER": live_server.url, "CORRAL_TOKEN": live_server.token}

    out, heavy = run_cli_listing_modules(["node", "list"], remote)
    assert heavy == []
    rows = [line.split("│") for line in out.splitlines()[2:]]
    assert [[c.strip() for c in row] for row in rows] == [
        ["n1", "rack", "rocky", "10.78.0.1", "52:54:00:ab:cd:ef", "service"],
        ["n2", "rack", "rocky", "10.78.0.2", "", "service"],
    ]
    # the same bytes as the local database gives, read there with the standard
    # library's sqlite3 (corral.store.nodelist): neither library loads either
    local = {**env, "CORRAL_HOME": str(live_server.corral.paths.home)}
    local_out, local_heavy = run_cli_listing_modules(["node", "list"], local)
    assert local_out == out
    assert local_heavy == []
    # names in the order given, from either backend
    picked = run_cli_listing_modules(["node", "list", "n2,n1"], remote)[0]
    assert [line.split()[0] for line in picked.splitlines()[2:]] == ["n2", "n1"]
    assert run_cli_listing_modules(["node", "list", "n2,n1"], local)[0] == picked
    assert json.loads(run_cli_listing_modules(["node", "list", "-o", "json"], remote)[0]) == [
        {
            "name": "n1",
            "profiles": ["rack"],
            "interfaces": [{"network": "prov", "mac": "52:54:00:ab:cd:ef", "ip": "10.78.0.1"}],
        },
        {
            "name": "n2",
            "profiles": ["rack"],
            "interfaces": [{"network": "prov", "ip": "10.78.0.2"}],
        },
    ]


def test_settings_flags_take_their_help_from_the_models_when_help_is_shown() -> None:
    from corral.inventory.models import NodeSettings, PowerSettings

    shown = click.testing.CliRunner().invoke(cli, ["node", "add", "--help"], env={"COLUMNS": "200"})
    assert shown.exit_code == 0, shown.output
    for model, field in ((NodeSettings, "image"), (PowerSettings, "address")):
        description = model.model_fields[field].description
        assert description and description in shown.output
