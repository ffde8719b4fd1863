"""The lazy command table matches the modules, and `--help` stays cheap to start."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys

import click
import click.testing

import corral.cli
from corral.cli.main import LAZY_COMMANDS, cli


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
