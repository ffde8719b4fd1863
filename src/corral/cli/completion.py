"""`corral completion SHELL`: tab completion for bash, zsh and fish (click's own)."""

from __future__ import annotations

import click
from click.shell_completion import get_completion_class

SHELLS = ("bash", "zsh", "fish")


@click.command("completion")
@click.argument("shell", type=click.Choice(SHELLS))
@click.pass_context
def completion(ctx: click.Context, /, shell: str) -> None:
    """Print the shell completion script for bash, zsh or fish.

    \b
    bash: corral completion bash > /etc/bash_completion.d/corral
    zsh:  corral completion zsh > "${fpath[1]}/_corral"
    fish: corral completion fish > ~/.config/fish/completions/corral.fish
    """
    cls = get_completion_class(shell)
    assert cls is not None
    root = ctx.find_root().command
    click.echo(cls(root, {}, "corral", "_CORRAL_COMPLETE").source())


COMMANDS = [completion]
