"""`make bench`: every stage of the system measured against its own ceiling in one run.

A stage is a module with `STAGE = Stage(name, title, run)`, listed in `bench.run.STAGES`.
`async def run(ctx: BenchContext) -> list[Result]` gets the run's isolated environment
(`ctx.env`: database, topic prefix, registry, keys), says full or quick (`ctx.pick`), starts
services with `ctx.service(...)`, loads them with `bench.load` (`closed_loop`, `open_loop`,
`interleaved` against a baseline), reports progress with `ctx.step`, adds plot data to
`ctx.latencies` / `ctx.growth`, and returns its figures with their baselines and targets.
"""
