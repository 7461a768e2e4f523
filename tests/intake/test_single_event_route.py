"""A route run without FastAPI's handler runs no dependencies, so it refuses to be declared
with any rather than skip them."""

import pytest
from fastapi import APIRouter, Depends, Request, Response

from services.intake.routes import RequestRoute


async def endpoint(request: Request) -> Response:
    return Response(b"")


def test_a_request_route_with_a_dependency_is_refused_when_declared() -> None:
    router = APIRouter(dependencies=[Depends(lambda: None)])

    with pytest.raises(TypeError, match="dependencies"):
        router.add_api_route("/x", endpoint, methods=["POST"], route_class_override=RequestRoute)


def test_a_request_route_without_dependencies_is_declared() -> None:
    router = APIRouter()

    router.add_api_route("/x", endpoint, methods=["POST"], route_class_override=RequestRoute)

    assert [type(route) for route in router.routes] == [RequestRoute]
