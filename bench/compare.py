"""`python -m bench compare A B`: the figures of two results files side by side. A and B are
paths to a latest.json, or git revisions whose committed bench/results/latest.json is read.

Machines here are noisy, so what travels between runs is each figure's ratio to its same-run
baseline; raw values are shown with B / A beside them, ratios with their own B / A."""

import json
import math
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RESULTS_PATH = "bench/results/latest.json"


class ResultsNotFound(Exception):
    pass


@dataclass(frozen=True)
class Results:
    label: str
    machine: dict[str, Any]
    figures: dict[str, dict[str, Any]]  # by name


def load_results(source: str, *, repository: Path) -> Results:
    """A results file by path, or the one committed at a git revision."""
    path = Path(source)
    if path.is_file():
        text = path.read_text(encoding="utf-8")
    else:
        shown = subprocess.run(
            ["git", "-C", str(repository), "show", f"{source}:{RESULTS_PATH}"],
            capture_output=True,
            text=True,
        )
        if shown.returncode != 0:
            raise ResultsNotFound(
                f"{source}: neither a file nor a revision with {RESULTS_PATH} "
                f"({shown.stderr.strip()})"
            )
        text = shown.stdout
    document = json.loads(text)
    return Results(
        label=source,
        machine=document.get("machine", {}),
        figures={r["name"]: r for r in document.get("results", [])},
    )


def _number(value: float | None, unit: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    shown = f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.3g}"
    return f"{shown} {unit}".strip()


def _change(a: float | None, b: float | None) -> str:
    if a is None or b is None or a == 0:
        return "—"
    return f"{b / a:.2f}×"


def comparison_table(a: Results, b: Results) -> str:
    """Markdown: every figure of either run, in A's order then B's new ones."""
    names = list(a.figures) + [n for n in b.figures if n not in a.figures]
    lines = [
        f"A: {a.label} ({a.machine.get('git_commit', '?')}, {a.machine.get('date', '?')}, "
        f"load {a.machine.get('load_average', '?')})",
        f"B: {b.label} ({b.machine.get('git_commit', '?')}, {b.machine.get('date', '?')}, "
        f"load {b.machine.get('load_average', '?')})",
        "",
        "| figure | A | B | B / A | A ratio | B ratio | B / A (ratio) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name in names:
        fa, fb = a.figures.get(name, {}), b.figures.get(name, {})
        unit = fa.get("unit") or fb.get("unit") or ""
        lines.append(
            f"| {name} | {_number(fa.get('value'), unit)} | {_number(fb.get('value'), unit)} "
            f"| {_change(fa.get('value'), fb.get('value'))} "
            f"| {_number(fa.get('ratio'))} | {_number(fb.get('ratio'))} "
            f"| {_change(fa.get('ratio'), fb.get('ratio'))} |"
        )
    return "\n".join(lines) + "\n"
