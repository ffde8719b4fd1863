"""`corral lab up|down|status`: a virtual cluster of QEMU nodes on this machine."""

from __future__ import annotations

import asyncio
import os
import sys

import click

from corral.cli.context import CliContext
from corral.cli.image import reporter
from corral.cli.output import console, err_console, success
from corral.cli.status import show, summary
from corral.images import api
from corral.lab.accel import choose_accel, default_concurrency
from corral.lab.image import prepare_image
from corral.lab.lab import SERVER_URL, Lab, LabOptions, memory_for
from corral.lab.queue import QueueReport, boot_in_waves
from corral.lab.workload import WORKLOADS, NodeShell, show_workload, workload


@click.group()
def lab() -> None:
    """A virtual lab: a provisioning network, corral serve and QEMU nodes that netboot."""


@lab.command("up")
@click.option("--nodes", default=3, show_default=True, help="How many VMs")
@click.option("--uefi", is_flag=True, help="Boot through OVMF (UEFI) instead of SeaBIOS")
@click.option(
    "--memory",
    "memory_mb",
    type=click.IntRange(min=64),
    help="MB per VM (default: what the image needs stateless, at least 256)",
)
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
@click.option(
    "--preset",
    type=click.Choice(sorted(WORKLOADS)),
    help="A workload: build the image with this image preset (once), configure it "
    "(slurm: the slurm overlay set, lab01 the controller) and show it running",
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
    memory_mb: int | None,
    accel: str,
    image: str,
    preset: str | None,
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
    app = ctx.local()
    work = workload(preset) if preset else None
    if work is not None and image == "tiny":
        image = work.name
    with reporter() as rep:
        arts = prepare_image(
            app, image, SERVER_URL, rep, preset=work.image_preset if work else None
        )
    need = api.get_image(app, image).ram_needed
    memory_mb = memory_mb or max(memory_for(need), work.min_memory_mb if work else 0)
    console.print(
        f"image {image}: kernel {arts.kernel_version}, {arts.image.size / 1e6:.1f} MB packed; "
        f"VMs of {memory_mb} MB",
        highlight=False,
    )
    if need is not None and not stateful and memory_mb * (1 << 20) < need:
        err_console.print(
            f"warning: image {image} needs {need >> 20} MiB of RAM to boot stateless; "
            f"nodes of {memory_mb} MB will fail (give --memory {memory_for(need)})",
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
        workload=preset,
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
    if work is not None and not no_wait:
        console.print(f"- waiting for {work.name} on {len(names)} nodes", highlight=False)
        for command, output in show_workload(NodeShell(app, state.netns), work, names, timeout):
            console.print(f"$ {command}", highlight=False)
            console.print(output.rstrip(), highlight=False, markup=False)
    success(f"lab up: {len(names)} nodes")


@lab.command("down")
@click.pass_obj
def down(ctx: CliContext, /) -> None:
    """Stop the lab's VMs and server, remove its network and its inventory records."""
    for line in Lab(ctx.local()).down():
        console.print(f"- {line}", highlight=False)
    success("lab removed")


@lab.command("status")
@click.pass_obj
def status(ctx: CliContext, /) -> None:
    """What the lab runs (namespace, server, VMs) and the nodes' states."""
    state = Lab(ctx.local()).state()
    if state is None:
        console.print("the lab is down (corral lab up to start it)")
        return
    console.print(f"namespace {state.netns}, corral serve pid {state.serve_pid}")
    show(ctx.actions.status([vm.name for vm in state.vms]), "table")


COMMANDS = [lab]
