"""A hot read served first: answered ahead of the routes before it, still documented once in
OpenAPI, and its errors still problem+json."""

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI, Request, Response

from shared.errors import InvalidInput
from shared.problems import install_problem_handlers
from shared.web import include_routes, serve_first

router = APIRouter(prefix="/v1")


@router.get("/{anything}/summary", operation_id="catchAll")
async def catch_all(anything: str) -> dict[str, str]:
    return {"answered_by": "the route before"}


@router.get("/reports/summary", operation_id="getHotSummary")
async def hot_summary(request: Request) -> Response:
    period = request.query_params.get("period")
    if not period:
        raise InvalidInput("a period is needed", errors=[{"field": "period"}])
    return Response(b'{"answered_by":"served first","period":"%s"}' % period.encode())


def app_with_hot_summary() -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)
    include_routes(app, router)
    serve_first(app, hot_summary)
    return app


async def get(app: FastAPI, url: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.get(url)


async def test_the_read_is_answered_ahead_of_a_route_registered_before_it() -> None:
    response = await get(app_with_hot_summary(), "/v1/reports/summary?period=2018")
    assert response.status_code == 200
    assert response.json() == {"answered_by": "served first", "period": "2018"}


async def test_its_errors_are_problem_json_as_from_any_route() -> None:
    response = await get(app_with_hot_summary(), "/v1/reports/summary")
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["detail"] == "a period is needed"


def test_openapi_documents_the_route_once_as_fastapi_declared_it() -> None:
    document = app_with_hot_summary().openapi()
    operations = [
        operation["operationId"]
        for path in document["paths"].values()
        for operation in path.values()
    ]
    assert operations.count("getHotSummary") == 1
    assert "get" in document["paths"]["/v1/reports/summary"]


def test_a_route_with_dependencies_is_refused_rather_than_served_without_them() -> None:
    app = FastAPI()
    with_dependency = APIRouter(dependencies=[Depends(lambda: None)])
    with_dependency.add_api_route("/x", hot_summary, methods=["GET"])
    include_routes(app, with_dependency)

    with pytest.raises(TypeError, match="dependencies"):
        serve_first(app, hot_summary)


async def test_another_method_is_answered_405_naming_the_route_s_own() -> None:
    transport = httpx.ASGITransport(app=app_with_hot_summary())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.post("/v1/reports/summary?period=2018")
    assert (response.status_code, response.headers["allow"]) == (405, "GET")
