"""The 趋势 page: how the unit and its children fare over the campaign periods against the
targets, and where warnings and overdue cases cluster by unit and week. Every chart is SVG
drawn on the server, followed by its table (services/console/charts.py)."""

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from services.console.pages import render
from services.console.routes import SessionDep, UnitQuery, console, root_of, within_scope
from services.console.trending import Trending

router = APIRouter(include_in_schema=False)


def trending(request: Request) -> Trending:
    found: Trending | None = getattr(request.app.state, "trending", None)
    if found is None:
        found = request.app.state.trending = Trending(console(request))
    return found


@router.get("/trends")
async def trends(request: Request, session: SessionDep, unit: UnitQuery = None) -> HTMLResponse:
    root = root_of(request, session, unit)
    within_scope(request, session, root)
    page = await trending(request).page(session, root=root)
    service = console(request)
    context = {
        "root": service.unit(root),
        "trail": service.trail(session, root),
        "shares": page.shares,
        "warnings_chart": page.warnings,
        "overdue_chart": page.overdue,
        "complete": page.complete,
    }
    return render(request, "trends.html", context)
