"""The webhooks service's contract: a valid OpenAPI document with stable operation ids, each
route with a summary and a description."""

from openapi_spec_validator import validate

from services.webhooks.config import WebhooksSettings
from services.webhooks.main import create_app

OPERATION_IDS = {
    "getHealth",
    "getReadiness",
    "getMetrics",
    "createSubscription",
    "listSubscriptions",
    "getSubscription",
    "deleteSubscription",
    "rotateSubscriptionKeys",
    "listDeadLetters",
    "replayDeadLetters",
}


def test_the_document_is_valid_with_stable_ids_and_descriptions() -> None:
    document = create_app(WebhooksSettings(environment="test")).openapi()
    validate(document)
    operations = [operation for path in document["paths"].values() for operation in path.values()]
    assert {operation["operationId"] for operation in operations} == OPERATION_IDS
    for operation in operations:
        assert operation.get("summary") and operation.get("description"), operation
