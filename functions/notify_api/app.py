"""The notify API: POST /notifications, GET /notifications/{id}, bulk, and its OpenAPI document.

Thin: Powertools validates the request against the pydantic models, the domain in tidings.api does the
work, and one place below turns typed failures into HTTP answers with a machine-readable body.
"""

import json
import os
from functools import lru_cache
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Body, Header, Path
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyValidationError,
)
from pydantic import BaseModel, Field

from tidings.api.service import get_service
from tidings.notifications import NotificationNotFound, NotificationRequest
from tidings.observability import logger, metrics, tracer

MAX_REQUEST_BYTES = int(os.environ.get("MAX_REQUEST_BYTES", 256 * 1024))
MAX_BULK_REQUEST_BYTES = int(os.environ.get("MAX_BULK_REQUEST_BYTES", 5 * 1024 * 1024))
MAX_BULK_ITEMS = int(os.environ.get("MAX_BULK_ITEMS", 5000))
IDEMPOTENCY_TTL_SECONDS = int(os.environ.get("IDEMPOTENCY_TTL_SECONDS", 24 * 3600))

app = APIGatewayHttpResolver(enable_validation=True)
app.configure_openapi(
    title="Tidings notify API",
    version="1.0.0",
    summary="Charge a customer, e-mail the receipt and text them, carried to a definite end.",
)
idempotency_config = IdempotencyConfig(
    event_key_jmespath="[client_id, idempotency_key]",
    payload_validation_jmespath="request",
    expires_after_seconds=IDEMPOTENCY_TTL_SECONDS,
    raise_on_no_idempotency_key=True,
)


class Accepted(BaseModel):
    notification_id: str
    order_reference: str
    status: str
    status_url: str
    execution_arn: str | None = None


class BulkRequest(BaseModel):
    # Items are validated one by one by the domain, so one bad item does not reject the other 999.
    items: list[dict[str, Any]] = Field(min_length=1, max_length=MAX_BULK_ITEMS)


def _error(status: int, message: str, code: str, **extra: Any) -> Response:
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps({"message": message, "code": code, **extra}),
    )


def _client_id() -> str:
    """The caller: the JWT's subject, checked by the HTTP API's JWT authorizer before we run."""
    claims = app.current_event.request_context.authorizer.jwt_claim or {}
    subject = claims.get("sub")
    if not subject:
        raise PermissionError("no authenticated subject")
    return str(subject)


@lru_cache(maxsize=1)
def _idempotent_submit():
    """Powertools idempotency around the submission, built on first use (no I/O at import)."""
    persistence = DynamoDBPersistenceLayer(table_name=os.environ["IDEMPOTENCY_TABLE"])

    @idempotent_function(
        data_keyword_argument="submission", persistence_store=persistence, config=idempotency_config
    )
    def submit(submission: dict[str, Any]) -> dict[str, Any]:
        request = NotificationRequest.model_validate(submission["request"])
        return get_service().submit(submission["client_id"], submission["idempotency_key"], request)

    return submit


@app.post(
    "/notifications",
    summary="Start a notification",
    responses={
        202: {"description": "Accepted", "content": {"application/json": {"model": Accepted}}},
        413: {"description": "Body too large"},
        422: {"description": "Invalid request: a list of what is wrong"},
    },
)
@tracer.capture_method
def create_notification(
    request: Annotated[NotificationRequest, Body(embed=False)],
    idempotency_key: Annotated[
        str | None,
        Header(alias="idempotency-key", max_length=255, pattern=r"^[\x21-\x7e]+$"),
    ] = None,
):
    client_id = _client_id()
    key = idempotency_key or request.order_reference
    submission = {"client_id": client_id, "idempotency_key": key, "request": request.model_dump(mode="json")}
    accepted = _idempotent_submit()(submission=submission)
    logger.info("notification accepted", notification_id=accepted["notification_id"])
    metrics.add_metric(name="NotificationAccepted", unit="Count", value=1)
    return Response(
        status_code=202,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps(accepted),
        headers={"Location": accepted["status_url"]},
    )


@app.get("/notifications/<notification_id>", summary="A notification's status and timeline")
@tracer.capture_method
def get_notification(notification_id: Annotated[str, Path(max_length=64)]) -> dict[str, Any]:
    return get_service().status(_client_id(), notification_id)


@app.post(
    "/notifications/bulk", summary="Start many notifications", responses={202: {"description": "Accepted"}}
)
@tracer.capture_method
def create_bulk(
    bulk: Annotated[BulkRequest, Body(embed=False)],
    idempotency_key: Annotated[
        str | None, Header(alias="idempotency-key", max_length=255, pattern=r"^[\x21-\x7e]+$")
    ] = None,
):
    result = get_service().submit_bulk(_client_id(), idempotency_key, bulk.items)
    logger.info(
        "bulk accepted", bulk_id=result["bulk_id"], accepted=result["accepted"], rejected=result["rejected"]
    )
    metrics.add_metric(name="BulkItemsAccepted", unit="Count", value=result["accepted"])
    status = 202 if result["accepted"] or not result["rejected"] else 422
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=json.dumps(result))


@app.get("/notifications/bulk/<bulk_id>", summary="Per-item results of a bulk request")
@tracer.capture_method
def get_bulk(bulk_id: Annotated[str, Path(max_length=64)]) -> dict[str, Any]:
    return get_service().bulk_status(_client_id(), bulk_id)


@app.get("/openapi.json", summary="This API's OpenAPI document", include_in_schema=False)
def openapi():
    return Response(
        status_code=200, content_type=content_types.APPLICATION_JSON, body=app.get_openapi_json_schema()
    )


# --- the one place typed failures become HTTP answers ---------------------------------------------
@app.exception_handler(RequestValidationError)
def _invalid(error: RequestValidationError) -> Response:
    errors = [
        {"loc": list(item.get("loc", ())), "type": item.get("type"), "message": item.get("msg")}
        for item in error.errors()
    ]
    return _error(422, "the request is invalid", "validation_error", errors=errors)


@app.exception_handler(NotificationNotFound)
def _not_found(_error_: NotificationNotFound) -> Response:
    return _error(404, "not found", "not_found")


@app.exception_handler(PermissionError)
def _unauthorised(_error_: PermissionError) -> Response:
    return _error(401, "Unauthorized", "unauthorized")


@app.exception_handler(IdempotencyAlreadyInProgressError)
def _in_progress(_error_: IdempotencyAlreadyInProgressError) -> Response:
    return Response(
        status_code=409,
        content_type=content_types.APPLICATION_JSON,
        headers={"Retry-After": "1"},
        body=json.dumps(
            {
                "message": "a request with this idempotency key is in progress",
                "code": "idempotency_in_progress",
            }
        ),
    )


@app.exception_handler(IdempotencyValidationError)
def _key_reused(_error_: IdempotencyValidationError) -> Response:
    return _error(
        422,
        "the idempotency key was already used with a different request",
        "idempotency_key_reused",
        errors=[
            {"loc": ["header", "idempotency-key"], "type": "idempotency_key_reused", "message": "reused"}
        ],
    )


def _too_large(event: dict[str, Any]) -> bool:
    body = event.get("body") or ""
    size = len(body) * 3 // 4 if event.get("isBase64Encoded") else len(body.encode())
    limit = MAX_BULK_REQUEST_BYTES if event.get("rawPath", "").endswith("/bulk") else MAX_REQUEST_BYTES
    return size > limit


@logger.inject_lambda_context(correlation_id_path="requestContext.requestId")
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    if _too_large(event):
        return {
            "statusCode": 413,
            "headers": {"Content-Type": "application/json"},
            "body": json.dumps({"message": "request body too large", "code": "payload_too_large"}),
        }
    idempotency_config.register_lambda_context(context)
    return app.resolve(event, context)
