"""The notify API over HTTP: routes, idempotency, the size limit, and typed failures as HTTP answers.

``NotifyApi(settings).handle(event, context)`` is all ``functions/notify_api`` calls. Powertools'
``APIGatewayHttpResolver`` validates each request against the pydantic models (and serves the OpenAPI
document generated from them); the domain in ``tidings.api.service`` does the work; ``_errors`` is the
one place typed failures become answers with a machine-readable body.

(No ``from __future__ import annotations`` here: the resolver reads the route functions' annotations,
and ``BulkRequest`` is built per instance from the configured item limit.)
"""

import base64
import binascii
import json
import re
from collections.abc import Callable
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Annotated, Any, cast

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Body, Header, Path, Query
from aws_lambda_powertools.metrics import MetricUnit
from pydantic import BaseModel, Field, ValidationError

from tidings.api import openapi as doc
from tidings.api.actions import (
    ActionRefused,
    CancelAnswer,
    RefundAnswer,
    RefundRequest,
    ShopActions,
    actions_for,
)
from tidings.api.audited import call_entry
from tidings.api.queries import (
    InvalidQuery,
    NotificationFilters,
    NotificationPage,
    NotificationQueries,
    Timeline,
    queries_for,
)
from tidings.api.quota import ClientQuota, QuotaExceeded, QuotaTooSmall, quota_for
from tidings.api.request_id import InvalidRequestId, request_id, with_request_id
from tidings.api.service import (
    Accepted,
    BulkAccepted,
    BulkView,
    IdempotencyKeyReused,
    NotificationService,
    NotificationView,
    OrderAlreadyCharged,
    service_for,
)
from tidings.api.settings import ApiSettings
from tidings.audit import AuditLog, AuditRecord, AuditUnavailable, audit_log_for
from tidings.config import ConfigurationError
from tidings.errors import RecipientSuppressed
from tidings.notifications import NotificationNotFound, NotificationRequest
from tidings.notifications.models import ChannelStatus, NotificationStatus
from tidings.observability import logger, metrics, tracer
from tidings.outbound.urls import CallbackUrlRefused
from tidings.suppressions.service import SuppressionService
from tidings.templates.errors import TemplateProblem

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig

#: ``Idempotency-Key``: 1-255 printable ASCII characters.
IdempotencyKey = Annotated[
    str | None, Header(alias="idempotency-key", max_length=255, pattern=r"^[\x21-\x7e]+$")
]


class _InProgress(Exception):
    """Powertools' in-progress record: a request with this idempotency key is being answered."""


class _KeyReused(Exception):
    """Powertools' payload check: this idempotency key came with another request."""


class NotifyApi:
    """The HTTP side of the notify API for one container (clients and tables are touched on first use)."""

    def __init__(
        self,
        settings: ApiSettings,
        service: Callable[[], NotificationService] | None = None,
        actions: Callable[[], ShopActions] | None = None,
    ) -> None:
        self.settings = settings
        self.current_request_id: str | None = None
        self._service_factory = service or (lambda: service_for(settings))
        self._actions_factory = actions or (lambda: actions_for(self.service.store))
        self._context: Any = None
        self._described = False
        self.app = APIGatewayHttpResolver(enable_validation=True)
        self._routes()
        self._errors()
        from tidings.api import suppressions

        suppressions.register(self.app, lambda: self.suppressions, self.client_id, _error)

    def handle(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        """One API Gateway (HTTP API, payload 2.0) event to its response, carrying the request id;
        every call with a subject leaves one audit record."""
        try:
            current = request_id(event)
        except InvalidRequestId as exc:
            fallback = str((event.get("requestContext") or {}).get("requestId") or "")
            refused = _answer_dict(400, str(exc), "invalid_request_id")
            self._audit(event, refused, fallback)
            return with_request_id(refused, fallback)
        logger.set_correlation_id(current)  # every log line of this call carries it
        # Under the same key as the steps' and the webhook processor's lines (``request_id`` is the
        # providers' own request id in the provider call lines).
        logger.append_keys(api_request_id=current)
        self.current_request_id = current
        try:
            response = self._answer(event, context)
        except Exception:
            self._audit(event, {"statusCode": 500}, current)
            raise
        self._audit(event, response, current)
        return with_request_id(response, current)

    def _audit(self, event: dict[str, Any], response: dict[str, Any], current: str) -> None:
        entry = call_entry(event, response, current)
        if entry is not None:
            self.audit.record_quietly(entry)

    def _answer(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        if self._too_large(event):
            return _answer_dict(413, "request body too large", "payload_too_large")
        if not _is_json_body(event):
            # A form-encoded body would be parsed into field names made of the request's own content.
            return _answer_dict(415, "the request body must be application/json", "unsupported_media_type")
        if _nested_deeper_than(_body_text(event), MAX_JSON_DEPTH):
            # Refused before parsing: a deep enough body makes json.loads raise RecursionError (a 500).
            return _answer_dict(400, f"the request body nests deeper than {MAX_JSON_DEPTH}", "body_too_deep")
        self._context = context
        if str(event.get("rawPath", "")).endswith(DOCUMENT_PATHS):
            self.describe()
        return self.app.resolve(event, context)

    def openapi_json(self) -> str:
        """The OpenAPI document ``/openapi.json`` serves."""
        self.describe()
        return self.app.get_openapi_json_schema()

    def describe(self) -> None:
        """Give the resolver its OpenAPI description and the Swagger UI route, once: the OpenAPI models
        (Powertools' and the security scheme) load here, for the document's routes only."""
        if self._described:
            return
        self._described = True
        schemes, security = doc.security()
        about: dict[str, Any] = {
            "title": "Tidings notify API",
            "version": "2.0.0",
            "summary": "Charge a customer, e-mail the receipt and text them, carried to a definite end.",
            "security_schemes": schemes,
            "security": security,
        }
        self.app.configure_openapi(**about)
        # Swagger UI with its assets inlined by Powertools (no CDN: it works offline as well).
        self.app.enable_swagger(path="/swagger", persist_authorization=True, **about)

    # --- collaborators, built on first use -------------------------------------------------------
    @cached_property
    def service(self) -> NotificationService:
        return self._service_factory()

    @cached_property
    def actions(self) -> ShopActions:
        return self._actions_factory()

    @cached_property
    def idempotency(self) -> "IdempotencyConfig":
        from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig

        return IdempotencyConfig(
            event_key_jmespath="[client_id, idempotency_key]",
            payload_validation_jmespath="request",
            expires_after_seconds=self.settings.idempotency_ttl_seconds,
            raise_on_no_idempotency_key=True,
        )

    def _once(
        self, data_keyword_argument: str, function: Callable[..., dict[str, Any]]
    ) -> Callable[..., dict[str, Any]]:
        """``function`` answered once per key by Powertools idempotency (imported here with its DynamoDB
        layer and boto3; its table is first touched on a request), its refusals as our own errors."""
        from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, idempotent_function
        from aws_lambda_powertools.utilities.idempotency.exceptions import (
            IdempotencyAlreadyInProgressError,
            IdempotencyValidationError,
        )

        persistence = DynamoDBPersistenceLayer(table_name=self.settings.idempotency_table)
        once = idempotent_function(
            data_keyword_argument=data_keyword_argument,
            persistence_store=persistence,
            config=self.idempotency,
        )(function)

        def call(**data: Any) -> dict[str, Any]:
            self.idempotency.register_lambda_context(self._context)
            try:
                return cast(dict[str, Any], once(**data))
            except IdempotencyAlreadyInProgressError as exc:
                raise _InProgress() from exc
            except IdempotencyValidationError as exc:
                raise _KeyReused() from exc

        return call

    @cached_property
    def act_once(self) -> Callable[..., dict[str, Any]]:
        """A refund or a cancel, answered once per key: a repeat gets the first answer from the
        idempotency table and reaches neither Stripe nor the saga again."""

        def act(action: dict[str, Any]) -> dict[str, Any]:
            return self._act(action)

        return self._once("action", act)

    def _act(self, action: dict[str, Any]) -> dict[str, Any]:
        client_id, notification_id = action["client_id"], action["notification_id"]
        if action["kind"] == "refund":
            request = RefundRequest.model_validate(action["request"])
            refunded = self.actions.refund(client_id, notification_id, request, action["shop_key"])
            return refunded.model_dump(mode="json")
        return self.actions.cancel(client_id, notification_id).model_dump(mode="json")

    @cached_property
    def suppressions(self) -> "SuppressionService":
        service = self.service.suppressions()
        if service is None:
            raise ConfigurationError(
                "SUPPRESSIONS_TABLE is not set: the function's template entry must pass it"
            )
        return service

    @cached_property
    def quota(self) -> ClientQuota:
        settings = self.settings
        return quota_for(
            settings.rate_limit_table, settings.client_sends_per_second, settings.client_send_burst
        )

    @cached_property
    def audit(self) -> AuditLog:
        return audit_log_for(self.settings.audit_table, self.settings.audit_retention_days)

    @cached_property
    def queries(self) -> NotificationQueries:
        return queries_for(self.settings.notifications_table)

    @cached_property
    def submit_once(self) -> Callable[..., dict[str, Any]]:
        """Powertools idempotency around the submission (its table is first touched on a request)."""

        def submit(submission: dict[str, Any]) -> dict[str, Any]:
            # Inside the idempotent part: a retry answered from the first request's record costs nothing.
            self.quota.take(submission["client_id"])
            request = NotificationRequest.model_validate(submission["request"])
            accepted = self.service.submit(
                submission["client_id"],
                submission["idempotency_key"],
                request,
                request_id=submission.get("request_id"),
            )
            return accepted.model_dump(mode="json")

        return self._once("submission", submit)

    def client_id(self) -> str:
        """The caller: the JWT's subject, checked by the HTTP API's JWT authorizer before we run."""
        claims = self.app.current_event.request_context.authorizer.jwt_claim or {}
        subject = claims.get("sub")
        if not subject:
            raise PermissionError("no authenticated subject")
        return str(subject)

    # --- routes -----------------------------------------------------------------------------------
    def _routes(self) -> None:
        app, api = self.app, self

        class BulkRequest(BaseModel):
            # Items are validated one by one by the domain, so one bad item does not reject the rest.
            items: list[dict[str, Any]] = Field(min_length=1, max_length=self.settings.max_bulk_items)

        @app.post(
            "/notifications",
            summary="Start a notification",
            responses=doc.ok(202, "Accepted", Accepted) | doc.errors(400, 401, 403, 409, 413, 415, 422, 429),
        )
        @tracer.capture_method(capture_response=False)
        def create_notification(  # type: ignore[no-untyped-def]
            request: Annotated[NotificationRequest, Body(embed=False)], idempotency_key: IdempotencyKey = None
        ):  # no return annotation: the resolver would validate a Response against it
            submission = {
                "client_id": api.client_id(),
                "idempotency_key": idempotency_key or request.order_reference,
                "request": request.model_dump(mode="json"),
                # Not part of the idempotency key or the payload check: a retry may carry a new one.
                "request_id": api.current_request_id,
            }
            accepted = api.submit_once(submission=submission)
            logger.info("notification accepted", notification_id=accepted["notification_id"])
            metrics.add_metric(name="NotificationAccepted", unit=MetricUnit.Count, value=1)
            return _json(202, accepted, headers={"Location": accepted["status_url"]})

        @app.get(
            "/notifications/<notification_id>",
            summary="A notification's status and timeline",
            responses=doc.ok(200, "The notification", NotificationView) | doc.errors(401, 403, 404, 422),
        )
        @tracer.capture_method(capture_response=False)
        def get_notification(notification_id: Annotated[str, Path(max_length=64)]) -> dict[str, Any]:
            return api.service.status(api.client_id(), notification_id).model_dump(mode="json")

        @app.post(
            "/notifications/<notification_id>/refund",
            summary="Refund a notification's payment, in full or in part, once its saga has ended",
            description=(
                "Idempotent: a repeat with the same Idempotency-Key (or, without one, the same amount) "
                "gets the first answer and refunds nothing more. 409 not_charged when nothing was "
                "charged, already_refunded, saga_in_progress; 422 refund_exceeds_remaining."
            ),
            responses=doc.ok(200, "Refunded: the new status and the refund", RefundAnswer)
            | doc.errors(400, 401, 403, 404, 409, 413, 415, 422),
        )
        @tracer.capture_method(capture_response=False)
        def refund_notification(  # type: ignore[no-untyped-def]
            notification_id: Annotated[str, Path(max_length=64)],
            request: Annotated[RefundRequest, Body(embed=False)],
            idempotency_key: IdempotencyKey = None,
        ):
            refund = request
            shop_key = idempotency_key or f"amount-{refund.amount or 'all'}"
            answer = api.act_once(
                action={
                    "kind": "refund",
                    "client_id": api.client_id(),
                    "notification_id": notification_id,
                    "idempotency_key": f"refund\n{notification_id}\n{shop_key}",
                    "shop_key": shop_key,
                    "request": refund.model_dump(mode="json"),
                }
            )
            logger.info("refund answered", notification_id=notification_id, status=answer["status"])
            metrics.add_metric(name="ShopRefunded", unit=MetricUnit.Count, value=1)
            return _json(200, answer)

        @app.post(
            "/notifications/<notification_id>/cancel",
            summary="Cancel a notification whose saga waits: 3-D Secure, an uncertain charge, a required SMS",
            description=(
                "The answer's status is cancelling while the saga cancels or refunds the payment, or "
                "cancelled; a repeat answers the same. 409 already_finished or not_waiting otherwise."
            ),
            responses=doc.ok(202, "Cancelling or cancelled: the new status", CancelAnswer)
            | doc.errors(400, 401, 403, 404, 409, 415, 422),
        )
        @tracer.capture_method(capture_response=False)
        def cancel_notification(  # type: ignore[no-untyped-def]
            notification_id: Annotated[str, Path(max_length=64)], idempotency_key: IdempotencyKey = None
        ):
            action = {
                "kind": "cancel",
                "client_id": api.client_id(),
                "notification_id": notification_id,
                "idempotency_key": f"cancel\n{notification_id}\n{idempotency_key}",
                "request": {},
            }
            # Cancelling is idempotent by itself (a repeat answers the status the first led to); a key
            # makes a repeat get exactly the first answer.
            answer = api.act_once(action=action) if idempotency_key else api._act(action)
            logger.info("cancel answered", notification_id=notification_id, status=answer["status"])
            metrics.add_metric(name="ShopCancelled", unit=MetricUnit.Count, value=1)
            return _json(202, answer)

        @app.get(
            "/notifications",
            summary="The caller's notifications, newest first, with filters",
            responses=doc.ok(200, "One page", NotificationPage) | doc.errors(400, 401, 403, 422),
        )
        @tracer.capture_method(capture_response=False)
        def list_notifications(
            status: Annotated[NotificationStatus | None, Query()] = None,
            email_status: Annotated[ChannelStatus | None, Query()] = None,
            sms_status: Annotated[ChannelStatus | None, Query()] = None,
            order_reference: Annotated[str | None, Query(max_length=128)] = None,
            bulk_id: Annotated[str | None, Query(max_length=64)] = None,
            created_since: Annotated[datetime | None, Query()] = None,
            created_until: Annotated[datetime | None, Query()] = None,
            limit: Annotated[int, Query(ge=1, le=100)] = 25,
            cursor: Annotated[str | None, Query(max_length=2048)] = None,
        ) -> dict[str, Any]:
            filters = NotificationFilters(
                status=status,
                email_status=email_status,
                sms_status=sms_status,
                order_reference=order_reference,
                bulk_id=bulk_id,
                created_since=created_since,
                created_until=created_until,
                limit=limit,
                cursor=cursor,
            )
            return api.queries.list(api.client_id(), filters).model_dump(mode="json", exclude_unset=True)

        @app.get(
            "/notifications/<notification_id>/timeline",
            summary="One notification's joined timeline: states, provider calls, webhooks, queue hops",
            responses=doc.ok(200, "The timeline", Timeline) | doc.errors(401, 403, 404, 422),
        )
        @tracer.capture_method(capture_response=False)
        def get_timeline(notification_id: Annotated[str, Path(max_length=64)]) -> dict[str, Any]:
            timeline = api.queries.timeline(api.client_id(), notification_id)
            return timeline.model_dump(mode="json", exclude_unset=True)

        @app.post(
            "/notifications/bulk",
            summary="Start many notifications",
            responses=doc.ok(202, "Accepted (some items may be rejected)", BulkAccepted)
            | doc.errors(400, 401, 403, 413, 415, 429)
            | doc.bulk_rejected(BulkAccepted),
        )
        @tracer.capture_method(capture_response=False)
        def create_bulk(  # type: ignore[no-untyped-def]
            bulk: Annotated[BulkRequest, Body(embed=False)], idempotency_key: IdempotencyKey = None
        ):
            client_id = api.client_id()
            api.quota.take(client_id, len(bulk.items))  # one token per item, rejected ones included
            result = api.service.submit_bulk(
                client_id, idempotency_key, bulk.items, request_id=api.current_request_id
            )
            logger.info(
                "bulk accepted", bulk_id=result.bulk_id, accepted=result.accepted, rejected=result.rejected
            )
            metrics.add_metric(name="BulkItemsAccepted", unit=MetricUnit.Count, value=result.accepted)
            status = 202 if result.accepted or not result.rejected else 422
            return _json(status, result.model_dump(mode="json"))

        @app.get(
            "/notifications/bulk/<bulk_id>",
            summary="Per-item results of a bulk request",
            responses=doc.ok(200, "Per-item results and counts", BulkView) | doc.errors(401, 403, 404, 422),
        )
        @tracer.capture_method(capture_response=False)
        def get_bulk(bulk_id: Annotated[str, Path(max_length=64)]) -> dict[str, Any]:
            return api.service.bulk_status(api.client_id(), bulk_id).model_dump(mode="json")

        @app.get(
            "/audit",
            summary="Operators: the audit log, by notification, by bulk request, or by subject and time",
            description="Needs the tidings/ops scope. Exactly one of notification_id, bulk_id, subject.",
            responses=doc.ok(200, "Audit records, oldest first", doc.AuditPage)
            | doc.errors(400, 401, 403, 422, 503),
        )
        @tracer.capture_method(capture_response=False)
        def get_audit(
            notification_id: Annotated[str | None, Query(max_length=64)] = None,
            bulk_id: Annotated[str | None, Query(max_length=64)] = None,
            subject: Annotated[str | None, Query(max_length=256)] = None,
            since: Annotated[datetime | None, Query()] = None,
            until: Annotated[datetime | None, Query()] = None,
            limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        ) -> dict[str, Any]:
            api.client_id()  # an authenticated caller (the route's scope is checked by the authorizer)
            records = api.audit_records(notification_id, bulk_id, subject, since, until, limit)
            return {"records": [record.model_dump(mode="json") for record in records]}

        @app.get("/openapi.json", summary="This API's OpenAPI document", include_in_schema=False)
        def openapi():  # type: ignore[no-untyped-def]  # answered as built, not validated
            return Response(
                status_code=200, content_type=content_types.APPLICATION_JSON, body=api.openapi_json()
            )

    def audit_records(
        self,
        notification_id: str | None,
        bulk_id: str | None,
        subject: str | None,
        since: datetime | None,
        until: datetime | None,
        limit: int,
    ) -> list[AuditRecord]:
        """One notification's records (and its bulk request's, which sent it), one bulk's, or a subject's."""
        given = [
            name
            for name, value in (
                ("notification_id", notification_id),
                ("bulk_id", bulk_id),
                ("subject", subject),
            )
            if value
        ]
        if len(given) != 1:
            raise InvalidQuery("give exactly one of notification_id, bulk_id, subject", ["query"])
        if subject:
            return self.audit.by_subject(subject, since, until, limit)
        if bulk_id:
            return self.audit.by_target("bulk", bulk_id, limit)
        records = self.audit.by_target("notification", str(notification_id), limit)
        try:
            sent_in = self.service.store.get(str(notification_id)).bulk_id
        except NotificationNotFound:
            sent_in = None
        if sent_in:
            records = sorted([*records, *self.audit.by_target("bulk", sent_in, limit)], key=lambda r: r.at)
        return records[:limit]

    # --- the one place typed failures become HTTP answers -------------------------------------------
    def _errors(self) -> None:
        app = self.app

        @app.exception_handler(RequestValidationError)
        def invalid(error: RequestValidationError) -> Response:
            # Locations and messages only: the offending values may be personal data.
            errors = [
                {
                    "loc": _safe_location(item.get("loc", ())),
                    "type": item.get("type"),
                    "message": item.get("msg"),
                }
                for item in error.errors()
            ]
            return _error(422, "the request is invalid", "validation_error", errors=errors)

        @app.exception_handler(ValidationError)
        def invalid_filters(error: ValidationError) -> Response:
            errors = [
                {"loc": ["query", *item["loc"]], "type": item["type"], "message": item["msg"]}
                for item in error.errors()
            ]
            return _error(422, "the request is invalid", "validation_error", errors=errors)

        @app.exception_handler(CallbackUrlRefused)
        def callback_refused(error: CallbackUrlRefused) -> Response:
            errors = [{"loc": ["body", "callback_url"], "type": error.reason, "message": error.message}]
            return _error(422, "the request is invalid", "validation_error", errors=errors)

        @app.exception_handler(InvalidQuery)
        def invalid_query(error: InvalidQuery) -> Response:
            errors = [{"loc": error.loc, "type": "invalid_query", "message": error.message}]
            return _error(400, error.message, "invalid_query", errors=errors)

        @app.exception_handler(QuotaExceeded)
        def over_quota(exc: QuotaExceeded) -> Response:
            return _error(
                429,
                "this client's send quota is spent for now; retry after the given seconds",
                "quota_exceeded",
                headers={"Retry-After": str(exc.retry_after_seconds)},
                retry_after_seconds=exc.retry_after_seconds,
                requested=exc.requested,
                quota={"per_second": exc.bucket.rate, "burst": int(exc.bucket.capacity)},
            )

        @app.exception_handler(QuotaTooSmall)
        def over_burst(exc: QuotaTooSmall) -> Response:
            errors = [{"loc": ["body", "items"], "type": "bulk_exceeds_quota", "message": str(exc)}]
            # 413 like any request too large for the route (a bulk route's 422 is per-item results).
            return _error(
                413,
                "this bulk request has more items than the client's quota allows at once; split it",
                "bulk_exceeds_quota",
                errors=errors,
                requested=exc.requested,
                quota={"per_second": exc.bucket.rate, "burst": int(exc.bucket.capacity)},
            )

        @app.exception_handler(AuditUnavailable)
        def audit_unavailable(exc: AuditUnavailable) -> Response:
            logger.error("audit log unavailable", error_type=str(exc))
            return _error(
                503,
                "the audit log could not be read; try again",
                "audit_unavailable",
                headers={"Retry-After": "5"},
            )

        @app.exception_handler(ActionRefused)
        def refused(exc: ActionRefused) -> Response:
            # The body's ``status`` is the notification's (the HTTP status is the answer's own).
            body = {"message": exc.message, "code": exc.code, "notification_id": exc.notification_id}
            return _json(exc.http_status, body | {"status": exc.status} | exc.details)

        @app.exception_handler(NotificationNotFound)
        def not_found(_exc: NotificationNotFound) -> Response:
            return _error(404, "not found", "not_found")

        @app.exception_handler(PermissionError)
        def unauthorised(_exc: PermissionError) -> Response:
            return _error(401, "Unauthorized", "unauthorized")

        @app.exception_handler(_InProgress)
        def in_progress(_exc: _InProgress) -> Response:
            message = "a request with this idempotency key is in progress"
            return _error(409, message, "idempotency_in_progress", headers={"Retry-After": "1"})

        @app.exception_handler(OrderAlreadyCharged)
        def already_charged(exc: OrderAlreadyCharged) -> Response:
            return _error(
                409,
                "this order already has a notification that charged or is charging the customer; "
                'send "new_charge": true to charge again',
                "order_already_charged",
                notification_id=exc.notification_id,
                status_url=exc.status_url,
            )

        @app.exception_handler(TemplateProblem)
        def template_refused(exc: TemplateProblem) -> Response:
            # Locations and types only: the data is the shop's customer's (personal) data.
            return _error(422, f"{exc.message}; nothing was charged", exc.code, errors=exc.errors)

        @app.exception_handler(RecipientSuppressed)
        def suppressed(exc: RecipientSuppressed) -> Response:
            return _error(
                422,
                f"the {exc.channel} channel is required but its recipient is on the suppression list; "
                "nothing was charged",
                "recipient_suppressed",
                channel=exc.channel,
                reason=exc.reason,
            )

        @app.exception_handler([_KeyReused, IdempotencyKeyReused])
        def key_reused(_exc: Exception) -> Response:
            reused = {
                "loc": ["header", "idempotency-key"],
                "type": "idempotency_key_reused",
                "message": "reused",
            }
            return _error(
                422,
                "the idempotency key was already used with a different request",
                "idempotency_key_reused",
                errors=[reused],
            )

    def _too_large(self, event: dict[str, Any]) -> bool:
        """Refused before parsing: the bulk route has its own, larger limit."""
        body = event.get("body") or ""
        size = len(body) * 3 // 4 if event.get("isBase64Encoded") else len(body.encode())
        bulk = event.get("rawPath", "").endswith("/bulk")
        return size > (self.settings.max_bulk_request_bytes if bulk else self.settings.max_request_bytes)


#: The routes that serve the OpenAPI document (also under a stage's path prefix).
DOCUMENT_PATHS = ("/openapi.json", "/swagger")

#: A location element the answer may repeat: a list index or a name that could be one of our fields.
_FIELD_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")


def _safe_location(location: Any) -> list[str | int]:
    """The path to a bad value, with any key that is not field-shaped (an unknown key is the caller's
    own content, possibly a whole body or an e-mail address) replaced by a placeholder."""
    return [
        part if isinstance(part, int) or (isinstance(part, str) and _FIELD_NAME.match(part)) else "<key>"
        for part in location
    ]


#: The deepest JSON a request may nest (objects and arrays); the bulk request needs four.
MAX_JSON_DEPTH = 16
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_JSON_BRACKET = re.compile(r"[\[\]{}]")


def _body_text(event: dict[str, Any]) -> str:
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        try:
            return base64.b64decode(body).decode("utf-8", errors="replace")
        except (binascii.Error, ValueError):
            return ""  # the resolver refuses it as invalid JSON
    return str(body)


def _nested_deeper_than(body: str, limit: int) -> bool:
    """Whether the JSON text opens more than ``limit`` objects or arrays inside each other (strings,
    with their brackets, skipped), counted without parsing it."""
    depth = 0
    for bracket in _JSON_BRACKET.finditer(_JSON_STRING.sub("", body)):
        if bracket.group() in "[{":
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


def _is_json_body(event: dict[str, Any]) -> bool:
    """A request with a body says it is JSON, or says nothing (then it is read as JSON)."""
    if not event.get("body"):
        return True
    headers = {name.lower(): value for name, value in (event.get("headers") or {}).items()}
    media_type = headers.get("content-type", "").split(";")[0].strip().lower()
    return media_type in ("", "application/json") or media_type.endswith("+json")


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps(body),
        headers=headers,
    )


def _error(
    status: int, message: str, code: str, headers: dict[str, str] | None = None, **extra: Any
) -> Response:
    return _json(status, {"message": message, "code": code, **extra}, headers=headers)


def _answer_dict(status: int, message: str, code: str) -> dict[str, Any]:
    """An answer given before the resolver runs, in API Gateway's response shape."""
    return {
        "statusCode": status,
        "headers": {"Content-Type": content_types.APPLICATION_JSON},
        "body": json.dumps({"message": message, "code": code}),
    }
