"""axe-core, from npm (package.json beside this file, installed by deploy/install-system.sh),
run on a page of the console: its violations of the impacts the console may not have."""

from pathlib import Path
from typing import Any

from playwright.async_api import Page

AXE = Path(__file__).parent / "node_modules" / "axe-core" / "axe.min.js"
REFUSED_IMPACTS = ("serious", "critical")

RUN_AXE = """async () => {
  const result = await axe.run(document, {resultTypes: ['violations']});
  return result.violations.map((v) => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.slice(0, 5).map((n) => n.target.join(' ') + ': ' + n.failureSummary),
  }));
}"""


async def violations(page: Page) -> list[dict[str, Any]]:
    """What axe finds serious or critical on the page as it stands. The page's content
    security policy runs no script: the page's context must have been opened with
    bypass_csp=True for axe to be injected."""
    if not AXE.exists():
        raise FileNotFoundError(f"{AXE} is missing: run deploy/install-system.sh")
    await page.add_script_tag(path=str(AXE))
    found: list[dict[str, Any]] = await page.evaluate(RUN_AXE)
    return [v for v in found if v["impact"] in REFUSED_IMPACTS]


def described(found: list[dict[str, Any]]) -> str:
    return "\n".join(
        f"{v['impact']} {v['id']}: {v['help']}\n  " + "\n  ".join(v["nodes"]) for v in found
    )
