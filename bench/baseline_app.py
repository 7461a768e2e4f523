"""The ceiling for intake's single-event route: a bare FastAPI app that validates the same
`Event` model and answers 202 with a receipt, without middleware, authentication or I/O."""

from datetime import UTC, datetime
from typing import Annotated

from fastapi import Body, FastAPI, status

from services.intake.schemas import ReceiptOut
from shared.events import Event


def create_app() -> FastAPI:
    app = FastAPI(title="bare intake baseline")

    @app.post("/v1/events", status_code=status.HTTP_202_ACCEPTED, response_model=ReceiptOut)
    async def post_event(event: Annotated[Event, Body()]) -> ReceiptOut:
        return ReceiptOut(event_id=event.event_id, accepted_at=datetime.now(UTC), duplicate=False)

    @app.get("/readyz")
    async def readyz() -> dict[str, str]:
        return {"status": "ready"}

    return app
