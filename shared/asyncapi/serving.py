"""`GET /asyncapi.json` for every service that writes to Kafka (a principal in
`shared.kafka_rights.RIGHTS` with topics to write): the one document of all topics."""

import orjson
from fastapi import APIRouter, Response

from shared import kafka_rights
from shared.asyncapi.document import asyncapi_document
from shared.config import Settings


def serves_asyncapi(service: str) -> bool:
    rights = kafka_rights.RIGHTS.get(f"sanwu-{service}")
    return rights is not None and bool(rights.writes)


def asyncapi_router(settings: Settings) -> APIRouter:
    """Built on the first request and kept: it depends only on the code and the settings.
    Outside the OpenAPI document, which describes HTTP operations only."""
    router = APIRouter()
    built: list[bytes] = []

    @router.get("/asyncapi.json", include_in_schema=False)
    async def asyncapi() -> Response:
        if not built:
            built.append(orjson.dumps(asyncapi_document(settings)))
        return Response(built[0], media_type="application/json")

    return router
