"""Reading the console's charts (services/console/charts.py) back from a page: every point the
SVG draws and every cell its table lists, each as (series, x, value, text)."""

from typing import Any

from playwright.async_api import Page

Datum = tuple[str, str, str, str]

READ_CHART = """(id) => {
  const figure = document.getElementById(id);
  if (!figure) return null;
  const said = (text) => text.slice(text.lastIndexOf('：') + 1);
  const drawn = [...figure.querySelectorAll('svg g.point, svg g.cell')].map((g) =>
    [g.dataset.series, g.dataset.x, g.dataset.value, said(g.querySelector('title').textContent)]);
  const listed = [...figure.querySelectorAll('table td')].filter((td) => td.dataset.value !== '')
    .map((td) => [td.dataset.series, td.dataset.x, td.dataset.value, td.textContent]);
  return {drawn, listed};
}"""


class ChartData:
    def __init__(self, read: dict[str, Any]) -> None:
        self.drawn: list[Datum] = [tuple(d) for d in read["drawn"]]
        self.listed: list[Datum] = [tuple(d) for d in read["listed"]]

    def series(self, key: str) -> list[Datum]:
        """The points of one series as drawn, in the order of the x axis."""
        return [d for d in self.drawn if d[0] == key]


async def chart_on(page: Page, figure_id: str) -> ChartData | None:
    read = await page.evaluate(READ_CHART, figure_id)
    return None if read is None else ChartData(read)


async def chart_ids(page: Page) -> list[str]:
    ids: list[str] = await page.locator("figure.chart").evaluate_all("fs => fs.map(f => f.id)")
    return ids
