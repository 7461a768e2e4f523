"""The AsyncAPI 3.0 document of sanwu's topics (`document.py` builds it, `topics.py` says what
travels on each topic) and the route that serves it."""

from shared.asyncapi.document import asyncapi_document
from shared.asyncapi.serving import asyncapi_router, serves_asyncapi

__all__ = ["asyncapi_document", "asyncapi_router", "serves_asyncapi"]
