"""What the notify API's OpenAPI document (``/openapi.json``, Swagger UI at ``/swagger``) says it answers.

The error bodies are the ones ``tidings.api.http`` really returns (``_error``): ``message``, a
machine-readable ``code`` and, for 400 and 422, the ``errors`` list with locations and types but never
the offending values. The bearer scheme is the HTTP API's JWT authorizer's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse


class ErrorItem(BaseModel):
    loc: list[str | int] = Field(description='Where: ["body", "customer", "email"], ["query", "limit"], ...')
    type: str = Field(description="pydantic's error type, or ours (idempotency_key_reused, invalid_query)")
    message: str


class ClientQuotaBody(BaseModel):
    per_second: float = Field(description="Notifications per second, on average")
    burst: int = Field(description="Notifications at once (a bulk request's items count one each)")


class ErrorBody(BaseModel):
    message: str
    code: str = Field(
        description=(
            "Machine-readable: validation_error, not_found, unauthorized, template_not_found, "
            "template_data_invalid, ..."
        )
    )
    errors: list[ErrorItem] | None = Field(None, description="For 400 and 422: each problem found")
    notification_id: str | None = Field(
        None,
        description="For 409 order_already_charged: the order's existing notification; for a "
        "refused refund or cancel, the notification's id",
    )
    status_url: str | None = Field(None, description="For 409 order_already_charged: where to see it")
    status: str | None = Field(
        None, description="For a refused refund or cancel (409, 422): the notification's status now"
    )
    remaining: int | None = Field(
        None, description="For 422 refund_exceeds_remaining: what may still be refunded (minor units)"
    )
    amount_refunded: int | None = Field(
        None, description="For 409 already_refunded and 422 refund_exceeds_remaining: refunded so far"
    )
    retry_after_seconds: int | None = Field(
        None, description="For 429 quota_exceeded: seconds until the request fits (also in Retry-After)"
    )
    requested: int | None = Field(
        None, description="For 429 quota_exceeded and 413 bulk_exceeds_quota: notifications asked for"
    )
    quota: ClientQuotaBody | None = Field(
        None, description="For 429 quota_exceeded and 413 bulk_exceeds_quota: the client's quota"
    )


class GatewayRefusal(BaseModel):
    """What API Gateway's JWT authorizer answers itself (403 ``{"message": "Forbidden"}``)."""

    message: str


class AuditEntryBody(BaseModel):
    model_config = {"extra": "allow"}

    audit_id: str
    at: str
    subject: str = Field(description="The JWT subject (sha256:<hex> when not identifier-shaped), or iam:<id>")
    actor: str = Field(description="client, operator or system")
    action: str = Field(description="notifications.create, bulk.create, dlq.redrive, ...")
    outcome: str = Field(description="ok, refused or failed")
    status: int | None = None
    code: str | None = None
    route: str | None = None
    scopes: list[str] = Field(default_factory=list)
    target_kind: str | None = None
    target_id: str | None = None
    request_id: str | None = None


class AuditPage(BaseModel):
    records: list[AuditEntryBody]


_DESCRIPTIONS = {
    400: (
        "A cursor that does not continue this query, or an empty time range (code invalid_query); a body "
        "that nests objects and arrays more than 16 deep (code body_too_deep); an X-Request-Id that is not "
        "1-128 safe characters (code invalid_request_id)"
    ),
    401: (
        'No valid bearer token: API Gateway\'s JWT authorizer answers {"message": "Unauthorized"} '
        "before the function runs; a token without a subject gets code unauthorized"
    ),
    403: (
        'The token lacks the route\'s scope: API Gateway answers {"message": "Forbidden"} before the '
        "function runs. Sending (POST) needs notifications/write, reading (GET) notifications/read"
    ),
    404: "Not found, or not the caller's (code not_found)",
    409: (
        "A request with this Idempotency-Key is still in progress (code idempotency_in_progress, "
        "Retry-After), or the order already has a notification that charged or is charging the customer "
        "(code order_already_charged, with its notification_id and status_url; send new_charge to charge "
        "again)"
    ),
    413: (
        "Body too large (code payload_too_large), or a bulk request with more items than the client's "
        "quota holds at once (code bulk_exceeds_quota)"
    ),
    415: "The body is not application/json (code unsupported_media_type)",
    422: (
        "Invalid request: each problem's location and type (code validation_error, idempotency_key_reused), "
        "or a required channel whose recipient is on the suppression list (code recipient_suppressed, "
        "with the channel and the suppression's reason; nothing was stored or charged), or a receipt or "
        "SMS template that is missing (code template_not_found) or whose dynamic_template_data does not "
        "fit its declared fields (code template_data_invalid), each problem's location and type in errors; "
        "nothing was stored or charged"
    ),
    429: (
        "The client's send quota is spent (code quota_exceeded, Retry-After and retry_after_seconds), or "
        'API Gateway throttled the route ({"message": "Too Many Requests"})'
    ),
    503: (
        "An operator route's store could not be read or written (code audit_unavailable, "
        "suppressions_unavailable; Retry-After): nothing changed, ask again later"
    ),
}

#: The answers API Gateway gives itself, before the function runs: ``{"message": ...}`` without a code.
_GATEWAY_ANSWERS = {401, 403}


def errors(*statuses: int) -> dict[int, OpenAPIResponse]:
    """The ``responses`` entries of a route for these error statuses, with the real error body."""
    return {
        status: {
            "description": _DESCRIPTIONS[status],
            "content": {
                "application/json": {
                    # 401: the authorizer's own {"message": "Unauthorized"}, or the function's coded body.
                    "model": (GatewayRefusal | ErrorBody if status == 401 else GatewayRefusal)
                    if status in _GATEWAY_ANSWERS
                    else ErrorBody
                }
            },
        }
        for status in statuses
    }


def bulk_rejected(results: type[BaseModel]) -> dict[int, OpenAPIResponse]:
    """``POST /notifications/bulk``'s 422: every item rejected (the per-item results), or the request
    itself invalid (the error body)."""
    description = (
        "Every item rejected: the per-item results with each item's errors; or the request itself invalid "
        + "(code validation_error, idempotency_key_reused)"
    )
    content: dict[str, Any] = {"application/json": {"model": results | ErrorBody}}
    return {422: {"description": description, "content": content}}


def ok(status: int, description: str, model: type[BaseModel] | None = None) -> dict[int, OpenAPIResponse]:
    entry: OpenAPIResponse = {"description": description}
    if model is not None:
        entry["content"] = {"application/json": {"model": model}}
    return {status: entry}


def security() -> tuple[dict[str, Any], list[dict[str, list[str]]]]:
    """The bearer scheme (a JWT from the issuer the template names) required on every route."""
    from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer

    return {"bearerAuth": HTTPBearer(bearerFormat="JWT")}, [{"bearerAuth": []}]
