"""`make bench-compare A B`: two results files side by side, values and same-run ratios."""

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.support.stack import ROOT


def results(path: Path, commit: str, figures: list[dict[str, Any]]) -> Path:
    document = {"machine": {"git_commit": commit, "date": "2026-12-01"}, "results": figures}
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def compare(*sources: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bench", "compare", *sources],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_each_figure_shows_both_values_and_both_ratios_with_b_over_a(tmp_path: Path) -> None:
    a = results(
        tmp_path / "a.json",
        "aaaaaaa",
        [{"name": "intake: events/s", "value": 1000.0, "unit": "events/s", "ratio": 0.25}],
    )
    b = results(
        tmp_path / "b.json",
        "bbbbbbb",
        [
            {"name": "intake: events/s", "value": 1500.0, "unit": "events/s", "ratio": 0.4},
            {"name": "new: p99", "value": 12.0, "unit": "ms", "ratio": None},
        ],
    )

    shown = compare(str(a), str(b))

    assert shown.returncode == 0, shown.stderr
    rows = {line.split("|")[1].strip(): line for line in shown.stdout.splitlines() if "|" in line}
    cells = [c.strip() for c in rows["intake: events/s"].split("|")[2:-1]]
    assert cells == ["1,000 events/s", "1,500 events/s", "1.50×", "0.25", "0.4", "1.60×"]
    assert [c.strip() for c in rows["new: p99"].split("|")[2:-1]] == [
        "—", "12 ms", "—", "—", "—", "—"
    ]  # fmt: skip
    assert "aaaaaaa" in shown.stdout and "bbbbbbb" in shown.stdout


def test_a_revision_without_results_is_a_clear_error(tmp_path: Path) -> None:
    shown = compare("no-such-revision", str(tmp_path / "missing.json"))

    assert shown.returncode == 2
    assert "neither a file nor a revision" in shown.stderr
