"""Stage 7: how cost grows with the work. The rebuild (stage 4) again at 1/10 and 1/100 of its
events, as cost per event, which should stay flat (the rebuild linear in the events); and
reporting's summary (stage 6) for roots of 1/10 and 1/100 of the province (a city of 3,000
villages, a county of 300), as cost per request, which should stay flat whatever the size of
the subtree, while the SQL aggregate's grows with it. The full-size points are those stages 4
and 6 measured in this run (measured here when they did not run).

Reporting is measured before the smaller rebuilds, which replace evaluation's tables."""

from bench import evaluation_rebuild
from bench.pipeline import PROVINCE_CODE, state
from bench.report import GrowthSeries, Result
from bench.reporting import (
    CLIENTS,
    baseline_pool,
    cities,
    compare_summary,
    counties,
    running_reporting,
)
from bench.stage import BenchContext, Stage
from shared.access.models import Role

NAME = "growth"
ROOTS = {30_000: "province", 3_000: "city", 300: "county"}  # villages under the root


async def reporting_points(ctx: BenchContext) -> dict[str, dict[int, float]]:
    points = state(ctx).reporting_points
    missing = [size for size in ROOTS if size not in points.get("service", {})]
    if not missing:
        return points
    seconds = ctx.pick(full=8.0, quick=3.0)
    roots = {30_000: [PROVINCE_CODE], 3_000: cities(), 300: counties()}
    async with running_reporting(ctx) as service, baseline_pool(ctx) as pool:
        keys = await ctx.env.create_keys(role=Role.reader, scope_code=PROVINCE_CODE, count=CLIENTS)
        for size in missing:
            ctx.step(f"summary of a {ROOTS[size]} ({size:,} villages): reporting and SQL in turns")
            served, baseline = await compare_summary(
                ctx, service, keys=keys, pool=pool, roots=roots[size], seconds=2 * seconds
            )
            ctx.step(
                f"{ROOTS[size]}: reporting {served.cpu_per_request_us:,.0f} µs/request, "
                f"SQL aggregate {baseline.cpu_per_request_us:,.0f} µs/request"
            )
            points.setdefault("service", {})[size] = served.cpu_per_request_us
            points.setdefault("baseline", {})[size] = baseline.cpu_per_request_us
    return points


async def rebuild_points(ctx: BenchContext) -> dict[int, tuple[float, float]]:
    points = state(ctx).rebuild_points
    full = evaluation_rebuild.full_size(ctx)
    for count in (full // 100, full // 10, full):
        if count not in points:
            measured = await evaluation_rebuild.measure(ctx, count)
            points[count] = (measured.rebuild_us_per_event, measured.raw_us_per_event)
    return points


async def run(ctx: BenchContext) -> list[Result]:
    summary = await reporting_points(ctx)
    rebuild = await rebuild_points(ctx)
    ctx.growth += evaluation_rebuild.growth_series(rebuild)
    ctx.growth += [
        GrowthSeries(
            "reporting summary, by villages under the root",
            "CPU µs per request",
            sorted(summary["service"].items()),
        ),
        GrowthSeries(
            "SQL aggregate summary, by villages under the root",
            "CPU µs per request",
            sorted(summary["baseline"].items()),
        ),
    ]
    ctx.note(
        f"{NAME}: the rebuild over 1/100, 1/10 and all of stage 4's events (same province, "
        "same mix, a topic each), as wall-clock µs per event, next to the raw consumer's; the "
        "cost of each further event and the fixed cost of a rebuild (migrations, loading the "
        "registry, staging tables, the swap) come from the two largest runs; "
        "reporting's summary for a county (300 villages), a city (3,000) and the province "
        "(30,000) under stage 6's load, as CPU per request of the service process and the "
        "run database's PostgreSQL backends, next to the SQL aggregate's."
    )
    results: list[Result] = []
    for count, (cost, raw) in sorted(rebuild.items()):
        results.append(
            Result(f"{NAME}, rebuild of {count:,} events: cost per event", cost, "µs", raw)
        )
    (small, (small_cost, _)), (large, (large_cost, _)) = sorted(rebuild.items())[-2:]
    marginal = (large_cost * large - small_cost * small) / (large - small)
    fixed = (large_cost - marginal) * large / 1e6
    results += [
        Result(f"{NAME}, rebuild: cost of each further event", marginal, "µs"),
        Result(f"{NAME}, rebuild: fixed cost of a rebuild", fixed, "s"),
    ]
    for size, cost in sorted(summary["service"].items()):
        baseline = summary["baseline"][size]
        results.append(
            Result(
                f"{NAME}, summary of a {ROOTS[size]} ({size:,} villages): cost per request",
                cost,
                "µs",
                baseline,
            )
        )
    return results


STAGE = Stage("growth", "Growth: cost against size", run)
