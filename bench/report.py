"""What a bench run produces: result entries with their targets, the machine they were measured
on, and the JSON, markdown and PNG files under bench/results/."""

import json
import math
import os
import platform
import subprocess
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = ROOT / "bench" / "results"


@dataclass(frozen=True, slots=True)
class Target:
    """A bound on a figure, or on its ratio to the baseline (value ÷ baseline)."""

    bound: float
    op: Literal[">=", "<="] = ">="
    on: Literal["value", "ratio"] = "value"

    @classmethod
    def at_least(cls, bound: float) -> "Target":
        return cls(bound, ">=")

    @classmethod
    def at_most(cls, bound: float) -> "Target":
        return cls(bound, "<=")

    @classmethod
    def ratio_at_least(cls, bound: float) -> "Target":
        return cls(bound, ">=", "ratio")

    @classmethod
    def ratio_at_most(cls, bound: float) -> "Target":
        return cls(bound, "<=", "ratio")

    def holds(self, value: float, ratio: float | None) -> bool:
        measured = ratio if self.on == "ratio" else value
        if measured is None or math.isnan(measured):
            return False
        return measured >= self.bound if self.op == ">=" else measured <= self.bound

    def __str__(self) -> str:
        subject = "ratio " if self.on == "ratio" else ""
        return f"{subject}{self.op} {self.bound:g}"


@dataclass(frozen=True, slots=True)
class Result:
    """One figure of the run. `ratio` is always value ÷ baseline."""

    name: str
    value: float
    unit: str
    baseline: float | None = None
    target: Target | None = None

    @classmethod
    def failure(cls, stage_title: str, *, reason: str) -> "Result":
        """The entry of a stage that did not complete: no value, target missed."""
        return cls(f"{stage_title}: failed ({reason})", math.nan, "", target=Target.at_least(0))

    @property
    def failed(self) -> bool:
        return math.isnan(self.value) and self.target is not None

    @property
    def ratio(self) -> float | None:
        if self.baseline is None or self.baseline == 0 or math.isnan(self.value):
            return None
        return self.value / self.baseline

    @property
    def met(self) -> bool | None:
        return None if self.target is None else self.target.holds(self.value, self.ratio)

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "value": None if math.isnan(self.value) else round(self.value, 3),
            "unit": self.unit,
            "baseline": None if self.baseline is None else round(self.baseline, 3),
            "ratio": None if self.ratio is None else round(self.ratio, 3),
            "target": None if self.target is None else str(self.target),
            "met": self.met,
        }


@dataclass
class LatencySeries:
    """Latency samples of one load, in milliseconds, for the percentile plot."""

    name: str
    samples_ms: list[float]


@dataclass
class GrowthSeries:
    """How one figure's cost grows with the size of the work, for the cost-against-size plot."""

    name: str
    unit: str
    points: list[tuple[float, float]] = field(default_factory=list)  # (size, cost)


def percentile(sorted_samples: list[float], p: float) -> float:
    """Nearest-rank percentile of already sorted samples (NaN when there are none)."""
    if not sorted_samples:
        return math.nan
    rank = max(1, math.ceil(p / 100 * len(sorted_samples)))
    return sorted_samples[rank - 1]


# --- the machine ---------------------------------------------------------------------------


def machine(*, postgres_version: str, kafka_version: str) -> dict[str, Any]:
    return {
        "cores": os.cpu_count(),
        "cpu": _cpu_model(),
        "memory_gib": round(_memory_bytes() / 2**30, 1),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "postgres": postgres_version,
        "kafka": kafka_version,
        "git_commit": _git_commit(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def kafka_version() -> str:
    """The broker's version, read from the jars the local stack runs (deploy/stack.sh)."""
    libs = ROOT / ".stack" / "kafka" / "libs"
    jars = sorted(libs.glob("kafka-server-[0-9]*.jar")) if libs.is_dir() else []
    return jars[0].stem.removeprefix("kafka-server-") if jars else "unknown"


def _cpu_model() -> str:
    with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _memory_bytes() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def _git_commit() -> str:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=False
        ).stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    return f"{commit}+dirty" if git("status", "--porcelain", "--untracked-files=no") else commit


# --- output --------------------------------------------------------------------------------


def markdown_table(results: list[Result]) -> str:
    lines = [
        "| figure | value | baseline | ratio | target | met |",
        "|---|---:|---:|---:|---|:---:|",
    ]
    for r in results:
        baseline = "—" if r.baseline is None else _number(r.baseline)
        ratio = "—" if r.ratio is None else f"{r.ratio:.2f}"
        target = "—" if r.target is None else _target_text(r.target, r.unit)
        met = {True: "yes", False: "**no**", None: ""}[r.met]
        lines.append(
            f"| {r.name} | {_number(r.value)} {r.unit} | {baseline} | {ratio} | {target} | {met} |"
        )
    return "\n".join(lines)


def _number(value: float) -> str:
    if math.isnan(value):
        return "—"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}" if abs(value) < 10 else f"{value:.1f}"


def _target_text(target: Target, unit: str) -> str:
    op = "≥" if target.op == ">=" else "≤"
    if target.on == "ratio":
        return f"{op} {target.bound:g} × baseline"
    return f"{op} {target.bound:,g} {unit}"


def write_outputs(
    *,
    directory: Path,
    machine_info: dict[str, Any],
    results: list[Result],
    latencies: list[LatencySeries],
    growth: list[GrowthSeries],
    notes: list[str],
) -> Path:
    """latest.json, latest.md and latest.png in `directory`; returns the markdown file."""
    from bench.plot import plot

    directory.mkdir(parents=True, exist_ok=True)
    document = {"machine": machine_info, "results": [r.as_json() for r in results]}
    (directory / "latest.json").write_text(
        json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    markdown = _markdown_document(machine_info, results=results, notes=notes)
    markdown_path = directory / "latest.md"
    markdown_path.write_text(markdown, encoding="utf-8")
    plot(latencies, growth, path=directory / "latest.png")
    return markdown_path


def _markdown_document(
    machine_info: dict[str, Any], *, results: list[Result], notes: list[str]
) -> str:
    m = machine_info
    header = (
        f"{m['date']} · {m['cores']} cores ({m['cpu']}), {m['memory_gib']} GiB, "
        f"load average {m['load_average'][0]} at start · "
        f"Python {m['python']} · PostgreSQL {m['postgres']} · Kafka {m['kafka']} · "
        f"commit {m['git_commit']}"
    )
    parts = [header, "", markdown_table(results)]
    if notes:
        parts += ["", *[f"- {note}" for note in notes]]
    return "\n".join(parts) + "\n"
