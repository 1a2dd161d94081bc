"""``/suppressions``: the operator's routes on the suppression list (scope ``tidings/ops``).

The scope is the template's (each route's ``AuthorizationScopes``; the local API gateway reads the same
template). Addresses are accepted in the body only, never in a URL or a query (those reach access
logs), and answered masked; an entry is named by its ``suppression_id``.

(No ``from __future__ import annotations``: the resolver reads the route functions' annotations.)
"""

from collections.abc import Callable
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query

from tidings.api import openapi as doc
from tidings.observability import tracer
from tidings.suppressions.models import (
    SuppressionChannel,
    SuppressionPage,
    SuppressionRequest,
    SuppressionView,
)
from tidings.suppressions.service import SuppressionNotFound, SuppressionService
from tidings.suppressions.store import InvalidCursor


class SuppressionsUnavailable(Exception):
    """The suppression table could not be read or written (a 503: nothing changed, ask again)."""


def _stored[T](call: Callable[[], T]) -> T:
    """``call()``, its AWS failures as :class:`SuppressionsUnavailable` (never a bare 500)."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return call()
    except (BotoCoreError, ClientError) as exc:
        raise SuppressionsUnavailable(type(exc).__name__) from exc


def register(
    app: APIGatewayHttpResolver,
    service: Callable[[], SuppressionService],
    actor: Callable[[], str],
    error: Callable[..., Response],
) -> None:
    """Add the routes and their error answers to ``app``."""

    @app.get(
        "/suppressions",
        summary="The suppression list, one page (addresses masked)",
        responses=doc.ok(200, "One page", SuppressionPage) | doc.errors(400, 401, 403, 422, 503),
    )
    @tracer.capture_method(capture_response=False)
    def list_suppressions(
        channel: Annotated[SuppressionChannel | None, Query()] = None,
        limit: Annotated[int, Query(ge=1, le=100)] = 50,
        cursor: Annotated[str | None, Query(max_length=2048)] = None,
    ) -> dict[str, Any]:
        return _stored(lambda: service().list(channel, limit, cursor)).model_dump(mode="json")

    @app.post(
        "/suppressions",
        summary="Suppress an address (201; 200 if it already was, with the entry kept)",
        responses=doc.ok(201, "Suppressed", SuppressionView) | doc.errors(401, 403, 415, 422, 503),
    )
    @tracer.capture_method(capture_response=False)
    def add_suppression(request: Annotated[SuppressionRequest, Body(embed=False)]):  # type: ignore[no-untyped-def]
        view, created = _stored(lambda: service().add(request, actor()))
        return _json(201 if created else 200, view.model_dump(mode="json"))

    @app.delete(
        "/suppressions/<suppression_id>",
        summary="Lift a suppression",
        responses=doc.ok(200, "Lifted: the entry as it was", SuppressionView)
        | doc.errors(401, 403, 404, 422, 503),
    )
    @tracer.capture_method(capture_response=False)
    def remove_suppression(
        suppression_id: Annotated[str, Path(max_length=64, pattern=r"^sup_[0-9a-f]{40}$")],
    ) -> dict[str, Any]:
        return _stored(lambda: service().remove(suppression_id, actor())).model_dump(mode="json")

    @app.exception_handler(SuppressionNotFound)
    def not_found(_exc: SuppressionNotFound) -> Response:
        return error(404, "not found", "not_found")

    @app.exception_handler(SuppressionsUnavailable)
    def unavailable(exc: SuppressionsUnavailable) -> Response:
        from tidings.observability import logger

        logger.error("suppression list unavailable", error_type=str(exc))
        message = "the suppression list could not be read or written; try again"
        return error(503, message, "suppressions_unavailable", headers={"Retry-After": "5"})

    @app.exception_handler(InvalidCursor)
    def invalid_cursor(exc: InvalidCursor) -> Response:
        errors = [{"loc": ["query", "cursor"], "type": "invalid_query", "message": str(exc)}]
        return error(400, str(exc), "invalid_query", errors=errors)


def _json(status: int, body: Any) -> Response:
    import json

    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=json.dumps(body))
