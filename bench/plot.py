"""latest.png: latency percentiles of every load, and cost against size for the growth stages."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display

import matplotlib.pyplot as plt
from matplotlib.axes import Axes

from bench.report import GrowthSeries, LatencySeries, percentile

PERCENTILES = [50.0, 75.0, 90.0, 95.0, 99.0, 99.9]


def plot(latencies: list[LatencySeries], growth: list[GrowthSeries], *, path: Path) -> None:
    figure, (latency_axes, growth_axes) = plt.subplots(1, 2, figsize=(13, 5))
    _plot_latencies(latency_axes, latencies)
    _plot_growth(growth_axes, growth)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _plot_latencies(axes: Axes, latencies: list[LatencySeries]) -> None:
    axes.set_title("Latency percentiles")
    positions = list(range(len(PERCENTILES)))
    for series in latencies:
        ordered = sorted(series.samples_ms)
        if ordered:
            values = [percentile(ordered, p) for p in PERCENTILES]
            axes.plot(positions, values, marker="o", label=series.name)
    axes.set_xticks(positions, [f"p{p:g}" for p in PERCENTILES])
    axes.set_yscale("log")
    axes.set_ylabel("milliseconds")
    axes.grid(True, which="both", alpha=0.3)
    if latencies:
        axes.legend(fontsize="small")
    else:
        _empty(axes, "no latency measured in this run")


def _plot_growth(axes: Axes, growth: list[GrowthSeries]) -> None:
    axes.set_title("Cost against size")
    drawn = [series for series in growth if series.points]
    for series in drawn:
        sizes, costs = zip(*sorted(series.points), strict=True)
        axes.plot(sizes, costs, marker="o", label=f"{series.name} ({series.unit})")
    if drawn:
        axes.set_xscale("log")
        axes.set_yscale("log")
        axes.set_xlabel("size of the work (as each series names it)")
        axes.grid(True, which="both", alpha=0.3)
        axes.legend(fontsize="small")
    else:
        _empty(axes, "no growth stage in this run")


def _empty(axes: Axes, message: str) -> None:
    axes.set_xticks([])
    axes.set_yticks([])
    axes.text(0.5, 0.5, message, ha="center", va="center", transform=axes.transAxes)
