"""`corral lab up|down|status`: a virtual cluster of QEMU nodes on this machine."""

from __future__ import annotations

import asyncio
import os
import sys

import click

from corral.cli.context import CliContext
from corral.cli.image import reporter
from corral.cli.output import console, success
from corral.cli.status import show, summary
from corral.lab.accel import choose_accel, default_concurrency
from corral.lab.image import prepare_image
from corral.lab.lab import SERVER_URL, Lab, LabOptions
from corral.lab.queue import QueueReport, boot_in_waves


@click.group()
def lab() -> None:
    """A virtual lab: a provisioning network, corral serve and QEMU nodes that netboot."""


@lab.command("up")
@click.option("--nodes", default=3, show_default=True, help="How many VMs")
@click.option("--uefi", is_flag=True, help="Boot through OVMF (UEFI) instead of SeaBIOS")
@click.option("--memory", "memory_mb", default=256, show_default=True, help="MB per VM")
@click.option(
    "--accel",
    type=click.Choice(["auto", "tcg", "kvm"]),
    default="auto",
    show_default=True,
    help="auto uses KVM only where it really runs guests",
)
@click.option(
    "--image", default="tiny", show_default=True, help="Image to boot (tiny is built on first use)"
)
@click.option("--concurrency", type=int, help="VMs booting at once (default: by cores)")
@click.option("--stateful", is_flag=True, help="Install to a virtio disk instead of RAM")
@click.option("--no-wait", is_flag=True, help="Return once the VMs are started")
@click.option("--timeout", default=900.0, show_default=True, help="Seconds per node to boot")
@click.pass_obj
def up(
    ctx: CliContext,
    /,
    nodes: int,
    uefi: bool,
    memory_mb: int,
    accel: str,
    image: str,
    concurrency: int | None,
    stateful: bool,
    no_wait: bool,
    timeout: float,
) -> None:
    """Create the lab and boot its nodes; waits until they have booted."""
    if os.geteuid() != 0:
        raise click.UsageError("the lab creates network namespaces: run it as root")
    chosen = choose_accel(accel)  # type: ignore[arg-type]
    waves = concurrency or default_concurrency(chosen, os.cpu_count() or 1)
    app = ctx.app
    with reporter() as rep:
        arts = prepare_image(app, image, SERVER_URL, rep)
    console.print(
        f"image {image}: kernel {arts.kernel_version}, {arts.image.size / 1e6:.1f} MB packed",
        highlight=False,
    )
    opts = LabOptions(
        nodes=nodes,
        uefi=uefi,
        memory_mb=memory_mb,
        accel=chosen,
        image=image,
        concurrency=waves,
        stateful=stateful,
    )
    lab_ = Lab(app)
    state = lab_.up(opts, progress=lambda msg: console.print(f"- {msg}", highlight=False))
    names = [vm.name for vm in state.vms]
    console.print(f"- powering on {len(names)} VMs, {waves} at a time", highlight=False)

    def changed(report: QueueReport) -> None:
        done = ", ".join(f"{n}: {how}" for n, how in report.finished.items())
        print(
            f"  started {len(report.started)}/{len(names)}; finished: {done or '-'}",
            file=sys.stderr,
        )

    report = asyncio.run(
        boot_in_waves(
            ctx.actions, names, waves, timeout=timeout if not no_wait else 0.0, on_change=changed
        )
    )
    rows = ctx.actions.status(names)
    show(rows, "table")
    console.print(summary(rows), highlight=False)
    console.print(f"serial consoles: {lab_.dir}/vms/<node>.serial.log", highlight=False)
    console.print(f"server log: {lab_.dir}/serve.log", highlight=False)
    console.print("tear down: corral lab down", highlight=False)
    if report.failed and not no_wait:
        raise click.ClickException(f"not booted: {', '.join(report.failed)}")
    success(f"lab up: {len(names)} nodes")


@lab.command("down")
@click.pass_obj
def down(ctx: CliContext, /) -> None:
    """Stop the lab's VMs and server, remove its network and its inventory records."""
    for line in Lab(ctx.app).down():
        console.print(f"- {line}", highlight=False)
    success("lab removed")


@lab.command("status")
@click.pass_obj
def status(ctx: CliContext, /) -> None:
    """What the lab runs (namespace, server, VMs) and the nodes' states."""
    state = Lab(ctx.app).state()
    if state is None:
        console.print("the lab is down (corral lab up to start it)")
        return
    console.print(f"namespace {state.netns}, corral serve pid {state.serve_pid}")
    show(ctx.actions.status([vm.name for vm in state.vms]), "table")


COMMANDS = [lab]
