"""`corral exec NODES -- CMD`: run a shell command on running nodes through their agents.

The command goes to every node's agent at once (they long-poll the server),
each runs it with `/bin/sh -c` under `--timeout`, and the results are printed
per node, then a summary. Exit status 0 when every node ran it with exit code
0, else 1. Nodes not running the agent (not `ready`) are reported at once.
Works on the local database and with `--server`.
"""

from __future__ import annotations

import time
from typing import Any

import click
from rich.markup import escape
from rich.status import Status

from corral.actions import Actions, finished
from corral.cli.context import CliContext
from corral.cli.output import FORMATS, console, emit, emit_data, err_console
from corral.inventory.hostlists import compress, expand

Data = dict[str, Any]
GRACE = 30.0  # seconds beyond the timeout for agents to fetch the command and post results
POLL = 25.0  # seconds one wait for results may last (the server caps it at 30)


def outcome(run: Data) -> str:
    if run["state"] == "refused":
        return "refused"
    if run["state"] != "done":
        return "no answer"
    if run.get("timed_out"):
        return "timed out"
    return "ok" if run["exit_code"] == 0 else "failed"


def wait_for(actions: Actions, job: Data, limit: float) -> Data:
    """Poll the job until every node answered or `limit` seconds passed, showing progress."""
    deadline = time.monotonic() + limit
    total = len(job["runs"])
    with Status("", console=err_console) as status:
        while not finished(job):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            done = sum(1 for r in job["runs"] if r["state"] in ("done", "refused"))
            status.update(f"{done}/{total} nodes answered")
            job = actions.exec_job(job["job"], wait=min(POLL, remaining))
    return job


def print_runs(job: Data) -> None:
    for run in job["runs"]:
        result = outcome(run)
        colour = "green" if result == "ok" else "red"
        code = "" if run["exit_code"] is None else f", exit {run['exit_code']}"
        head = f"[bold]{escape(run['node'])}[/bold] [{colour}]{result}{code}[/{colour}]"
        console.print(head, highlight=False)
        for key in ("stdout", "stderr", "error"):
            text = (run.get(key) or "").rstrip("\n")
            if text:
                console.print(escape(text), highlight=False, style="red" if key != "stdout" else "")


def summary(job: Data) -> str:
    runs = job["runs"]
    counts: dict[str, list[str]] = {}
    for run in runs:
        counts.setdefault(outcome(run), []).append(run["node"])
    parts = [f"{len(counts.get('ok', []))} ok"]
    for result in ("failed", "timed out", "no answer", "refused"):
        if result in counts:
            parts.append(f"{len(counts[result])} {result} ({compress(counts[result])})")
    return f"{len(runs)} node(s): " + ", ".join(parts)


@click.command("exec", context_settings={"ignore_unknown_options": True})
@click.argument("nodes", metavar="NODES")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED, metavar="-- CMD...")
@click.option(
    "--timeout", type=float, default=60.0, show_default=True,
    help="Seconds the command may run on each node before it is killed (exit 124).",
)  # fmt: skip
@click.option(
    "-o", "--output", type=click.Choice(FORMATS), default="table", show_default=True,
    help="table: each node's output, then a summary; json/yaml: the whole job.",
)  # fmt: skip
@click.pass_obj
def exec_command(
    ctx: CliContext, /, nodes: str, command: tuple[str, ...], timeout: float, output: str
) -> None:
    """Run CMD on NODES (a hostlist such as n[001-064]) through the node agents.

    CMD's words are joined with spaces and run by /bin/sh -c on each node, as
    ssh does: `corral exec n[1-4] -- 'grep -c processor /proc/cpuinfo'`.
    Exits 1 if any node failed, timed out, did not answer or runs no agent.
    """
    job = ctx.actions.exec_start(expand(nodes), " ".join(command), timeout)
    job = wait_for(ctx.actions, job, timeout + GRACE)
    if output == "table":
        print_runs(job)
        rows = [(r["node"], outcome(r), r["exit_code"], r.get("seconds")) for r in job["runs"]]
        emit(job, output, ("NODE", "RESULT", "EXIT", "SECONDS"), lambda: rows)
        err_console.print(summary(job), highlight=False)
    else:
        emit_data(job, output)
    if any(outcome(r) != "ok" for r in job["runs"]):
        click.get_current_context().exit(1)


COMMANDS = [exec_command]
