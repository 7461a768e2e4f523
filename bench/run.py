"""`python -m bench run [--quick] [--stage NAME]...`: every stage (or the chosen ones) in one
isolated environment, then latest.json, latest.md and latest.png under bench/results/."""

import asyncio
import signal
import sys
import tempfile
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
import uvloop

from bench import (
    audit,
    cases,
    console,
    disputes,
    end_to_end,
    evaluation_rebuild,
    growth,
    intake_batch,
    intake_single,
    national,
    outside_load,
    relay,
    reporting,
    sustained,
    webhooks,
)
from bench.compare import ResultsNotFound, comparison_table, load_results
from bench.environment import isolated_environment, postgres_version
from bench.report import RESULTS_DIR, Result, kafka_version, machine, markdown_table, write_outputs
from bench.stage import BenchContext, Stage
from shared import logging as sanwu_logging

T = TypeVar("T")

# The stages in the order they run; a new stage is a module with a STAGE, listed here.
STAGES: list[Stage] = [
    intake_single.STAGE,
    intake_batch.STAGE,
    relay.STAGE,
    evaluation_rebuild.STAGE,
    end_to_end.STAGE,
    sustained.STAGE,
    reporting.STAGE,
    outside_load.STAGE,  # its county summaries read the province reporting has loaded
    console.STAGE,
    audit.STAGE,
    growth.STAGE,
    national.STAGE,  # the registry stays national afterwards
    disputes.STAGE,
    cases.STAGE,
    webhooks.STAGE,
]

app = typer.Typer(
    help="Benchmarks of sanwu against the local stack.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def stages_named(names: list[str] | None) -> list[Stage]:
    if not names:
        return STAGES
    known = {stage.name: stage for stage in STAGES}
    unknown = [name for name in names if name not in known]
    if unknown:
        raise typer.BadParameter(f"unknown stage {', '.join(unknown)}; one of {', '.join(known)}")
    return [stage for stage in STAGES if stage.name in names]


@app.command("run")
def run_command(
    quick: Annotated[bool, typer.Option(help="The short version (make bench-quick)")] = False,
    stage: Annotated[
        list[str] | None, typer.Option("--stage", "-s", help="Run only this stage (repeatable)")
    ] = None,
    clients: Annotated[int, typer.Option(help="Concurrent clients of the load stages")] = 32,
    output: Annotated[Path, typer.Option(help="Where the results go")] = RESULTS_DIR,
) -> None:
    """Run the stages and write the results."""
    chosen = stages_named(stage)
    sanwu_logging.configure("WARNING", json=False)
    try:
        failed = _run(bench(chosen, quick=quick, clients=clients, output=output))
    except KeyboardInterrupt:
        typer.echo("interrupted: services stopped, database and topics dropped", err=True)
        raise typer.Exit(130) from None
    if failed:
        raise typer.Exit(1)


@app.command("list")
def list_command() -> None:
    """The stages, in the order they run."""
    for stage in STAGES:
        typer.echo(f"{stage.name}\t{stage.title}")


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    """On uvloop, as uvicorn runs the services. Ctrl-C or SIGTERM cancels the coroutine, so its
    clean-up (services, database, topics) still runs; both end as KeyboardInterrupt."""

    async def cancellable() -> T:
        task = asyncio.current_task()
        assert task is not None
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
        try:
            return await coroutine
        except asyncio.CancelledError:
            raise KeyboardInterrupt from None

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(cancellable())


async def bench(stages: list[Stage], *, quick: bool, clients: int, output: Path) -> bool:
    """Run the stages; returns True when one of them failed."""
    machine_info = machine(postgres_version=await postgres_version(), kafka_version=kafka_version())
    results: list[Result] = []
    failed = False
    with tempfile.TemporaryDirectory(prefix="sanwu-bench-") as work_dir:
        async with isolated_environment(Path(work_dir)) as env:
            ctx = BenchContext(quick=quick, env=env, results_dir=output, clients=clients)
            ctx.stage_name = "bench"
            ctx.step(f"database {env.database}, topic prefix {env.topic_prefix}")
            for stage in stages:
                outcome = await run_stage(ctx, stage)
                failed = failed or any(r.failed for r in outcome)
                results += outcome
            ctx.stage_name = "bench"
            ctx.step("dropping the database and topics")
    markdown = write_outputs(
        directory=output,
        machine_info=machine_info,
        results=results,
        latencies=ctx.latencies,
        growth=ctx.growth,
        notes=ctx.notes,
    )
    print(markdown_table(results))
    print(f"\nwritten: {markdown}, latest.json, latest.png", file=sys.stderr)
    return failed


async def run_stage(ctx: BenchContext, stage: Stage) -> list[Result]:
    ctx.stage_name = stage.name
    ctx.step(stage.title)
    began = time.monotonic()
    try:
        results = await stage.run(ctx)
    except Exception as exc:
        ctx.step(f"failed: {exc!r}")
        return [Result.failure(stage.title, reason=repr(exc))]
    ctx.step(f"done in {time.monotonic() - began:.0f} s")
    return results


@app.command("compare")
def compare_command(
    a: Annotated[str, typer.Argument(help="A results file, or a git revision")],
    b: Annotated[
        str, typer.Argument(help="Another, shown against A")
    ] = "bench/results/latest.json",
) -> None:
    """Two runs' figures side by side with B / A, for values and for same-run ratios."""
    repository = Path(__file__).resolve().parent.parent
    try:
        first, second = (load_results(s, repository=repository) for s in (a, b))
    except ResultsNotFound as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from exc
    typer.echo(comparison_table(first, second), nl=False)


@app.command("profile")
def profile_command(
    load: Annotated[
        str,
        typer.Argument(
            help="intake-single, intake-batch, reporting-summary|status|eligible, "
            "evaluation-sustained"
        ),
    ] = "intake-single",
    seconds: Annotated[float, typer.Option(help="How long the sampled load runs")] = 10.0,
    clients: Annotated[int, typer.Option(help="Concurrent clients (single events)")] = 32,
    output: Annotated[Path, typer.Option(help="Where the profile goes")] = RESULTS_DIR,
) -> None:
    """Sample a service with py-spy under a stage's load; writes profile-LOAD.md and .txt."""
    from bench.profile import DRAIN, LOADS, profile_service

    if load not in [*LOADS, DRAIN]:
        raise typer.BadParameter(f"one of {', '.join([*LOADS, DRAIN])}", param_hint="LOAD")
    sanwu_logging.configure("WARNING", json=False)
    try:
        summary = _run(profile_service(load, seconds=seconds, clients=clients, output=output))
    except KeyboardInterrupt:
        typer.echo("interrupted: service stopped, database and topics dropped", err=True)
        raise typer.Exit(130) from None
    typer.echo(summary.read_text(encoding="utf-8"))
