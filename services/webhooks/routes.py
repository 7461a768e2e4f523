"""The webhooks API: parse, authorise (the key; the service checks role and scope), call the
service, render."""

from typing import Annotated, Any
from uuid import UUID

import orjson
from fastapi import APIRouter, Query, Request, Response

from services.webhooks.schemas import (
    DeadLetterOut,
    DeadLetterPageOut,
    IssuedOut,
    ReplayIn,
    ReplayOut,
    RotateIn,
    SubscriptionIn,
    SubscriptionListOut,
    SubscriptionOut,
)
from services.webhooks.service import Issued, Subscribed, SubscriptionsService
from shared import cursors
from shared.web import PrincipalDep

router = APIRouter(prefix="/v1", tags=["webhooks"])

CURSOR_KIND = "dead-letters"
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such subscription in this key's scope"}
}


def service_of(request: Request) -> SubscriptionsService:
    subscriptions: SubscriptionsService = request.app.state.subscriptions
    return subscriptions


def rendered(found: Subscribed) -> SubscriptionOut:
    row = found.row
    return SubscriptionOut(
        subscription_id=row.subscription_id,
        url=row.url,
        kinds=row.kinds,
        scope_code=row.scope_code,
        state=row.state,
        disabled_reason=row.disabled_reason,
        public_key=found.public_key,
        previous_public_key=found.previous_public_key,
        previous_until=row.previous_until,
        deliveries=found.deliveries,
        created_at=row.created_at,
        changed_at=row.changed_at,
    )


def issued(made: Issued) -> IssuedOut:
    return IssuedOut(**rendered(made.subscribed).model_dump(), secret=made.secret)


@router.post(
    "/subscriptions",
    status_code=201,
    operation_id="createSubscription",
    response_model=IssuedOut,
    responses={422: {"description": "Bad input, or a target deliveries may not reach"}},
    summary="Subscribe an endpoint to changes in the key's scope",
    description="A reader, bureau or admin key subscribes a URL to kinds of change of its "
    "scope unit and every unit below it. Deliveries follow Standard Webhooks: `webhook-id`, "
    "`webhook-timestamp` and `webhook-signature` with `v1` (HMAC-SHA256, the `secret`) and "
    "`v1a` (Ed25519, `public_key`). The secret is in this answer only. The URL's host must "
    "resolve to public addresses only and use https, unless the deployment's allow-list "
    "names it (docs/webhooks.md).",
)
async def create_subscription(
    body: SubscriptionIn, request: Request, response: Response, principal: PrincipalDep
) -> IssuedOut:
    made = await service_of(request).subscribe(
        principal, url=body.url, kinds=body.kinds, secret=body.secret
    )
    response.headers["Location"] = f"/v1/subscriptions/{made.subscribed.row.subscription_id}"
    return issued(made)


@router.get(
    "/subscriptions",
    operation_id="listSubscriptions",
    response_model=SubscriptionListOut,
    summary="The subscriptions of the key's scope",
    description="Oldest first; secrets are never shown again.",
)
async def list_subscriptions(request: Request, principal: PrincipalDep) -> SubscriptionListOut:
    found = await service_of(request).subscriptions(principal)
    return SubscriptionListOut(items=[rendered(one) for one in found])


@router.get(
    "/subscriptions/{subscription_id}",
    operation_id="getSubscription",
    response_model=SubscriptionOut,
    responses=NOT_FOUND,
    summary="A subscription, its state and its deliveries by state",
    description="`state` is `disabled` once its receiver answered 410 Gone.",
)
async def get_subscription(
    subscription_id: UUID, request: Request, principal: PrincipalDep
) -> SubscriptionOut:
    return rendered(await service_of(request).subscription(principal, subscription_id))


@router.delete(
    "/subscriptions/{subscription_id}",
    status_code=204,
    operation_id="deleteSubscription",
    responses=NOT_FOUND,
    summary="Remove a subscription and its deliveries",
    description="Nothing more is delivered to it, not even what was pending.",
)
async def delete_subscription(
    subscription_id: UUID, request: Request, principal: PrincipalDep
) -> Response:
    await service_of(request).remove(principal, subscription_id)
    return Response(status_code=204)


@router.post(
    "/subscriptions/{subscription_id}/rotate",
    operation_id="rotateSubscriptionKeys",
    response_model=IssuedOut,
    responses=NOT_FOUND,
    summary="New keys for a subscription",
    description="A new secret (the one given, or one made) and a new Ed25519 key pair. For "
    "the overlap (`previous_until`), every delivery carries the old signatures beside the new "
    "ones, so a receiver switches keys when it likes within it.",
)
async def rotate_keys(
    subscription_id: UUID, request: Request, principal: PrincipalDep, body: RotateIn | None = None
) -> IssuedOut:
    secret = body.secret if body is not None else None
    return issued(await service_of(request).rotate(principal, subscription_id, secret=secret))


@router.get(
    "/subscriptions/{subscription_id}/dead-letters",
    operation_id="listDeadLetters",
    response_model=DeadLetterPageOut,
    responses=NOT_FOUND,
    summary="Deliveries given up on",
    description="Those whose last attempt failed (after the whole retry schedule, or a 410), "
    "oldest first, each with its payload and the last answer or error.",
)
async def list_dead_letters(
    subscription_id: UUID,
    request: Request,
    principal: PrincipalDep,
    cursor: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> DeadLetterPageOut:
    after = cursors.decode_seq(CURSOR_KIND, cursor, field="cursor") if cursor else 0
    found = await service_of(request).dead_letters(
        principal, subscription_id, after=after, limit=limit
    )
    items = [
        DeadLetterOut(
            delivery_id=dead.delivery_id,
            webhook_id=dead.message_id,
            unit_code=dead.unit_code,
            payload=orjson.loads(dead.body),
            attempts=dead.attempts,
            last_status=dead.last_status,
            last_error=dead.last_error,
            dead_at=dead.finished_at,
        )
        for dead in found
    ]
    last = str(items[-1].delivery_id) if len(items) == limit else None
    return DeadLetterPageOut(
        items=items, next_cursor=cursors.encode(CURSOR_KIND, last) if last else None
    )


@router.post(
    "/subscriptions/{subscription_id}/dead-letters/replay",
    operation_id="replayDeadLetters",
    response_model=ReplayOut,
    responses=NOT_FOUND,
    summary="Try dead letters again",
    description="The dead letters named (or every one) go out again from the first attempt "
    "of the schedule, with their own `webhook-id`. A replayed delivery comes after the ones "
    "of its unit delivered meanwhile: a receiver reconciles by the ids.",
)
async def replay_dead_letters(
    subscription_id: UUID, request: Request, principal: PrincipalDep, body: ReplayIn | None = None
) -> ReplayOut:
    ids = body.delivery_ids if body is not None else None
    replayed = await service_of(request).replay(principal, subscription_id, ids=ids)
    return ReplayOut(replayed=replayed)
