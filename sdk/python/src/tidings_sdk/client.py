"""The notify API client: one method per route a shop uses, typed models in and out, typed errors.

    from tidings_sdk import TidingsClient, NotificationRequest

    with TidingsClient("https://api.example.com", token=get_token) as tidings:
        accepted = tidings.create_notification(request)          # a fresh Idempotency-Key, kept on retries
        notification = tidings.get_notification(accepted.notification_id)

``token`` is the bearer token, or a function returning one (asked on every try, so a refreshed token is
used as soon as there is one). Retries follow ``retry`` (:class:`tidings_sdk.retry.RetryPolicy`).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel
from pydantic import ValidationError as _PydanticValidationError

from tidings_sdk.errors import BulkRejected, TransportFailed, UnexpectedAnswer, error_body, error_for
from tidings_sdk.models import (
    Accepted,
    BulkAccepted,
    BulkRequest,
    BulkStatus,
    CancelAnswer,
    ListedNotification,
    Notification,
    NotificationPage,
    NotificationRequest,
    RefundAnswer,
    RefundRequest,
    Timeline,
)
from tidings_sdk.retry import RetryPolicy, retry_after_seconds

__all__ = ["ROUTES", "Route", "TidingsClient"]

Model = TypeVar("Model", bound=BaseModel)
Token = str | Callable[[], str]
Body = NotificationRequest | Mapping[str, Any]

IDEMPOTENCY_HEADER = "Idempotency-Key"
REQUEST_ID_HEADER = "X-Request-Id"
USER_AGENT = "tidings-sdk-python/0.1.0"


class Route(BaseModel):
    """One API operation the client calls: what it sends and what a success answers (the SDK's tests
    compare each with the OpenAPI document)."""

    method: str
    path: str
    request: type[BaseModel] | None = None
    answer: type[BaseModel]
    status: int
    query: tuple[str, ...] = ()
    idempotency_key: bool = False


#: Every operation of the client, by method name.
ROUTES: dict[str, Route] = {
    "create_notification": Route(
        method="POST",
        path="/notifications",
        request=NotificationRequest,
        answer=Accepted,
        status=202,
        idempotency_key=True,
    ),
    "create_bulk": Route(
        method="POST",
        path="/notifications/bulk",
        request=BulkRequest,
        answer=BulkAccepted,
        status=202,
        idempotency_key=True,
    ),
    "get_bulk": Route(method="GET", path="/notifications/bulk/{bulk_id}", answer=BulkStatus, status=200),
    "get_notification": Route(
        method="GET", path="/notifications/{notification_id}", answer=Notification, status=200
    ),
    "list_notifications": Route(
        method="GET",
        path="/notifications",
        answer=NotificationPage,
        status=200,
        query=(
            "status",
            "email_status",
            "sms_status",
            "order_reference",
            "bulk_id",
            "created_since",
            "created_until",
            "limit",
            "cursor",
        ),
    ),
    "get_timeline": Route(
        method="GET", path="/notifications/{notification_id}/timeline", answer=Timeline, status=200
    ),
    "refund_notification": Route(
        method="POST",
        path="/notifications/{notification_id}/refund",
        request=RefundRequest,
        answer=RefundAnswer,
        status=200,
        idempotency_key=True,
    ),
    "cancel_notification": Route(
        method="POST",
        path="/notifications/{notification_id}/cancel",
        answer=CancelAnswer,
        status=202,
        idempotency_key=True,
    ),
}


class TidingsClient:
    def __init__(
        self,
        base_url: str,
        token: Token,
        *,
        retry: RetryPolicy | None = None,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        new_idempotency_key: Callable[[], str] | None = None,
    ) -> None:
        self._token = token
        self.retry = retry or RetryPolicy()
        self._new_key = new_idempotency_key or (lambda: str(uuid.uuid4()))
        #: The underlying httpx client (its base URL, timeout and transport), for requests of its own.
        self.http = httpx.Client(
            base_url=base_url,
            timeout=timeout,
            transport=transport,
            headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
            follow_redirects=False,
        )

    def __enter__(self) -> TidingsClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    # --- the routes ---------------------------------------------------------------------------------
    def create_notification(
        self, request: Body, *, idempotency_key: str | None = None, request_id: str | None = None
    ) -> Accepted:
        """``POST /notifications``: store the notification and start its saga (202).

        Without ``idempotency_key`` a new one is made; every try of this call sends the same one, so a
        retry after a lost answer returns the first answer instead of charging again.
        """
        key = idempotency_key or self._new_key()
        response, attempts = self._send(
            "POST", "/notifications", json=_body(request), idempotency_key=key, request_id=request_id
        )
        return self._parse(response, attempts, 202, Accepted)

    def create_bulk(
        self,
        items: Sequence[Body],
        *,
        idempotency_key: str | None = None,
        request_id: str | None = None,
    ) -> BulkAccepted:
        """``POST /notifications/bulk``: each item validated on its own; the per-item results (202).

        Raises :class:`BulkRejected` (with the results) when every item was rejected.
        """
        key = idempotency_key or self._new_key()
        payload = {"items": [_body(item) for item in items]}
        response, attempts = self._send(
            "POST", "/notifications/bulk", json=payload, idempotency_key=key, request_id=request_id
        )
        if response.status_code == 422 and _has(response, "bulk_id"):
            raise BulkRejected(response, _model(response, BulkAccepted), attempts)
        return self._parse(response, attempts, 202, BulkAccepted)

    def get_bulk(self, bulk_id: str) -> BulkStatus:
        """``GET /notifications/bulk/{bulk_id}``: each item's result and its notification's status now."""
        response, attempts = self._send("GET", f"/notifications/bulk/{_segment(bulk_id)}")
        return self._parse(response, attempts, 200, BulkStatus)

    def get_notification(self, notification_id: str, *, request_id: str | None = None) -> Notification:
        """``GET /notifications/{notification_id}``: the status, channels and timeline."""
        response, attempts = self._send(
            "GET", f"/notifications/{_segment(notification_id)}", request_id=request_id
        )
        return self._parse(response, attempts, 200, Notification)

    def list_notifications(
        self,
        *,
        status: str | None = None,
        email_status: str | None = None,
        sms_status: str | None = None,
        order_reference: str | None = None,
        bulk_id: str | None = None,
        created_since: datetime | str | None = None,
        created_until: datetime | str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> NotificationPage:
        """``GET /notifications``: one page of the caller's notifications, newest first."""
        params = {
            "status": status,
            "email_status": email_status,
            "sms_status": sms_status,
            "order_reference": order_reference,
            "bulk_id": bulk_id,
            "created_since": _time(created_since),
            "created_until": _time(created_until),
            "limit": limit,
            "cursor": cursor,
        }
        response, attempts = self._send(
            "GET", "/notifications", params={k: v for k, v in params.items() if v is not None}
        )
        return self._parse(response, attempts, 200, NotificationPage)

    def iter_notifications(self, **filters: Any) -> Iterator[ListedNotification]:
        """Every notification the filters of :meth:`list_notifications` select, page after page."""
        cursor = filters.pop("cursor", None)
        while True:
            page = self.list_notifications(**filters, cursor=cursor)
            yield from page.items
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    def get_timeline(self, notification_id: str) -> Timeline:
        """``GET /notifications/{notification_id}/timeline``: the table's record joined with the execution."""
        response, attempts = self._send("GET", f"/notifications/{_segment(notification_id)}/timeline")
        return self._parse(response, attempts, 200, Timeline)

    def refund_notification(
        self, notification_id: str, *, amount: int | None = None, idempotency_key: str | None = None
    ) -> RefundAnswer:
        """``POST /notifications/{notification_id}/refund``: all that remains (``amount`` None) or part
        of it, once the saga has ended (200). Every try sends the same key: one refund at most."""
        key = idempotency_key or self._new_key()
        response, attempts = self._send(
            "POST",
            f"/notifications/{_segment(notification_id)}/refund",
            json=RefundRequest(amount=amount).model_dump(exclude_none=True),
            idempotency_key=key,
        )
        return self._parse(response, attempts, 200, RefundAnswer)

    def cancel_notification(
        self, notification_id: str, *, idempotency_key: str | None = None
    ) -> CancelAnswer:
        """``POST /notifications/{notification_id}/cancel``: end a saga that waits (202, ``cancelling``
        or ``cancelled``)."""
        key = idempotency_key or self._new_key()
        response, attempts = self._send(
            "POST", f"/notifications/{_segment(notification_id)}/cancel", idempotency_key=key
        )
        return self._parse(response, attempts, 202, CancelAnswer)

    # --- the one way a request is sent --------------------------------------------------------------
    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
        request_id: str | None = None,
        retry: RetryPolicy | None = None,
    ) -> httpx.Response:
        """Any route, with the client's token and retries: the last answer, whatever its status (no
        idempotency key is made here; a POST that needs one should pass it)."""
        response, _attempts = self._send(
            method,
            path,
            json=json,
            params=params,
            headers=headers,
            idempotency_key=idempotency_key,
            request_id=request_id,
            retry=retry,
        )
        return response

    def _send(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
        request_id: str | None = None,
        retry: RetryPolicy | None = None,
    ) -> tuple[httpx.Response, int]:
        policy = retry or self.retry
        fixed = dict(headers or {})
        if idempotency_key is not None:
            fixed[IDEMPOTENCY_HEADER] = idempotency_key
        if request_id is not None:
            fixed[REQUEST_ID_HEADER] = request_id
        attempt = 0
        while True:
            attempt += 1
            sent = {"Authorization": f"Bearer {self._bearer()}", **fixed}
            try:
                response = self.http.request(method, path, json=json, params=params, headers=sent)
            except httpx.TransportError as exc:
                if not policy.retry_transport_errors or attempt >= policy.max_attempts:
                    raise TransportFailed(
                        f"no answer from {method} {path} after {attempt} tries ({type(exc).__name__})",
                        attempt,
                    ) from exc
                policy.sleep(policy.delay(attempt))
                continue
            if attempt >= policy.max_attempts or not _retryable(response, policy):
                return response, attempt
            wait = retry_after_seconds(response.headers.get("retry-after"))
            if wait is not None and wait > policy.max_delay_seconds:
                return response, attempt  # longer than this client waits: the caller decides
            response.close()
            policy.sleep(policy.delay(attempt, wait))

    def _bearer(self) -> str:
        return self._token() if callable(self._token) else self._token

    @staticmethod
    def _parse(response: httpx.Response, attempts: int, status: int, model: type[Model]) -> Model:
        if response.status_code != status:
            if response.is_success:
                raise UnexpectedAnswer(f"expected {status}, got {response.status_code}", response)
            raise error_for(response, attempts)
        return _model(response, model)


def _model(response: httpx.Response, model: type[Model]) -> Model:
    try:
        return model.model_validate_json(response.content)
    except _PydanticValidationError as exc:
        raise UnexpectedAnswer(
            f"the {response.status_code} answer is not a {model.__name__}: {exc.error_count()} problems",
            response,
        ) from None


def _retryable(response: httpx.Response, policy: RetryPolicy) -> bool:
    if response.status_code in policy.retry_statuses:
        return True
    return response.status_code == 409 and error_body(response).code == "idempotency_in_progress"


def _has(response: httpx.Response, field: str) -> bool:
    try:
        payload = response.json()
    except ValueError:
        return False
    return isinstance(payload, dict) and field in payload


def _body(request: Body) -> Any:
    """A model as the fields its caller set (the API applies its own defaults); a mapping as it is."""
    if isinstance(request, BaseModel):
        return request.model_dump(mode="json", exclude_unset=True)
    return dict(request)


def _time(value: datetime | str | None) -> str | None:
    return value.isoformat() if isinstance(value, datetime) else value


def _segment(value: str) -> str:
    """An id as one path segment (a ``/`` or ``..`` in it cannot reach another route)."""
    return quote(str(value), safe="")
