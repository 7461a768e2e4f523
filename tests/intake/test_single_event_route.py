"""POST /v1/events, the route posted to most, is the first the app matches (shared.web's
serve_first, tested in tests/test_served_first.py)."""

from services.intake.config import IntakeSettings
from services.intake.main import create_app
from services.intake.routes import post_event


def test_the_single_event_route_is_matched_before_any_other(
    intake_settings: IntakeSettings,
) -> None:
    app = create_app(intake_settings)

    first = app.router.routes[0]

    assert getattr(first, "endpoint", None) is post_event
    assert (getattr(first, "path", None), getattr(first, "methods", None)) == (
        "/v1/events",
        {"POST"},
    )
