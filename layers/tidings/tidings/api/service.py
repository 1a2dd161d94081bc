"""The notify API's domain: accept a notification (once), start its saga, report its status; bulk.

No API Gateway event or HTTP response here: ``tidings.api.http`` maps these results.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field, ValidationError

from tidings.api.settings import ServiceSettings
from tidings.config import ConfigurationError
from tidings.errors import RecipientSuppressed
from tidings.notifications.models import (
    Bulk,
    BulkItem,
    ChannelPolicy,
    ChannelRecord,
    FieldError,
    Notification,
    NotificationRequest,
    NotificationStatus,
    TimelineEvent,
)
from tidings.notifications.store import NotificationNotFound, NotificationStore
from tidings.observability import mask_email, mask_name, mask_phone
from tidings.outbound.urls import CallbackUrlRefused, check_callback_url, host_list
from tidings.saga.keys import notification_id_for
from tidings.saga.result_paths import execution_input as saga_input
from tidings.templates.errors import TemplateProblem

if TYPE_CHECKING:
    from tidings.suppressions.service import SuppressionService
    from tidings.templates.catalog import TemplateCatalog

BULK_NAMESPACE = uuid.UUID("0b8e3a5c-7f0e-4d55-8c3e-5e9a1f6b2d17")
#: Notification ids per bulk queue message: one consumer invocation starts this many sagas.
BULK_IDS_PER_MESSAGE = 10
#: Validation errors kept per rejected bulk item (the answer stays small for a batch of bad items).
MAX_ERRORS_PER_ITEM = 5


#: A notification in these statuses holds no charge for its order: a new notification may take it.
#: Any other status holds the order: in flight (accepted, running, awaiting_payment_action: a second
#: charge could land next to the first), charged (delivered, delivered_with_fallback,
#: partially_delivered), or ``failed``, where a charge may still stand (an unknown outcome, a refund that
#: failed); an operator decides, and the shop says ``new_charge`` to charge again on purpose.
CHARGE_RELEASED_STATUSES = frozenset(
    {
        NotificationStatus.PAYMENT_DECLINED.value,
        NotificationStatus.PAYMENT_NOT_TAKEN.value,
        NotificationStatus.COMPENSATED.value,
    }
)


class QueuedNotifications(BaseModel):
    """One bulk queue message: the notifications whose sagas the bulk starter starts in one invocation."""

    notification_ids: list[str] = Field(min_length=1, max_length=100)
    #: The bulk request's request id (on the starter's log lines, and in a dead-lettered message).
    request_id: str | None = None


class OrderAlreadyCharged(Exception):
    """The order already has a notification that charged (or is charging) the customer."""

    def __init__(self, notification_id: str, status: str) -> None:
        super().__init__(f"order already held by notification {notification_id} ({status})")
        self.notification_id = notification_id
        self.status = str(status)

    @property
    def status_url(self) -> str:
        return status_path(self.notification_id)


class IdempotencyKeyReused(Exception):
    """A bulk ``Idempotency-Key`` already used for a request with other items."""


def holds_charge(status: str) -> bool:
    return str(status) not in CHARGE_RELEASED_STATUSES


def status_path(notification_id: str) -> str:
    return f"/notifications/{notification_id}"


def validation_errors(error: ValidationError, prefix: tuple[str | int, ...] = ()) -> list[FieldError]:
    """Pydantic errors as a machine-readable list, without the offending input (it may be personal data)."""
    return [
        FieldError(loc=[*prefix, *item["loc"]], type=item["type"], message=item["msg"])
        for item in error.errors()
    ]


# --- what the service answers (tidings.api.http dumps these to JSON) -------------------------------


class Accepted(BaseModel):
    notification_id: str
    order_reference: str
    status: str
    status_url: str
    execution_arn: str | None = None


class MaskedCustomer(BaseModel):
    name: str
    email: str | None
    phone: str | None


class PaymentView(BaseModel):
    amount: int
    currency: str
    status: str | None
    payment_intent_id: str | None
    next_action_url: str | None
    refund_id: str | None
    refund_status: str | None
    amount_refunded: int | None = None


class NotificationView(BaseModel):
    """``GET /notifications/{id}``: the status and timeline, contact details masked."""

    notification_id: str
    order_reference: str
    status: NotificationStatus
    status_reason: str | None
    created_at: str
    updated_at: str | None
    finished_at: str | None
    execution_arn: str | None
    customer: MaskedCustomer
    payment: PaymentView
    channels: dict[str, ChannelRecord]
    timeline: list[TimelineEvent]


class BulkAccepted(BaseModel):
    bulk_id: str
    status_url: str
    accepted: int
    rejected: int
    items: list[BulkItem]


class BulkItemView(BulkItem):
    """A bulk item with its notification's current status (when it was stored)."""

    notification_status: NotificationStatus | None = None
    status_url: str | None = None


class BulkView(BaseModel):
    bulk_id: str
    created_at: str
    item_count: int
    counts: dict[str, int]
    items: list[BulkItemView]


@dataclass
class NotificationService:
    store: NotificationStore
    stepfunctions: Callable[[], Any]
    sqs: Callable[[], Any]
    state_machine_arn: str
    bulk_queue_url: str | None = None
    #: Hosts a request's ``callback_url`` may reach over plain http (none: https only).
    callback_http_hosts: frozenset[str] = frozenset()

    def check_callback_url(self, request: NotificationRequest) -> None:
        """``CallbackUrlRefused`` unless Tidings may call the request's ``callback_url`` back."""
        if request.callback_url is not None:
            check_callback_url(request.callback_url, self.callback_http_hosts)

    #: The suppression list (None: no list, nothing is refused for it).
    suppressions: Callable[[], SuppressionService | None] = lambda: None
    #: The receipt and SMS templates a request may name (the layer's catalogue).
    templates: Callable[[], TemplateCatalog] = field(default_factory=lambda: _catalog)

    def check_templates(self, request: NotificationRequest, loc: tuple[str | int, ...] = ("body",)) -> None:
        """``TemplateProblem`` (422) for a templated receipt or SMS whose template is missing or whose
        data does not fit it: refused before anything is stored or charged."""
        for channel, content in (("email", request.receipt), ("sms", request.sms)):
            if content is not None and content.template_id is not None:
                where = (*loc, "receipt" if channel == "email" else "sms")
                self.templates().check(content.template_id, content.data, content.locale, channel, where)

    # --- one notification -----------------------------------------------------------------------
    def submit(
        self,
        client_id: str,
        idempotency_key: str,
        request: NotificationRequest,
        request_id: str | None = None,
    ) -> Accepted:
        """Store the notification and start its saga; a replay returns the first submission's answer."""
        self.check_callback_url(request)
        self.check_templates(request)
        self.refuse_suppressed(request)
        notification_id = notification_id_for(client_id, idempotency_key)
        notification = self._new(notification_id, client_id, request, request_id=request_id)
        if request.new_charge:
            created = self.store.create(notification)
        else:
            created = self._create_once_per_order(notification)
        if not created:
            notification = self.store.get(notification_id)
            if notification.execution_arn:
                return self._accepted(notification)
        # The notification as stored (or as found, for a replay not started yet): no read back.
        arn = self.start(notification)
        return self._accepted(notification.model_copy(update={"execution_arn": arn}))

    def refuse_suppressed(self, request: NotificationRequest) -> None:
        """Raise ``RecipientSuppressed`` for a required channel whose recipient is on the suppression
        list: refused before anything is stored or charged. A best-effort one is skipped by the saga."""
        required = [
            channel
            for channel in request.channels
            if getattr(request.delivery_policy, channel) == ChannelPolicy.REQUIRED
        ]
        service = self.suppressions() if required else None
        for channel in required if service else ():
            address = request.recipient(channel)
            entry = service.find(channel, address) if service and address else None  # type: ignore[arg-type]
            if entry is not None:
                raise RecipientSuppressed(channel, entry.reason.value)

    def start(self, notification: Notification) -> str:
        """Start (or find) the one execution of this notification: its name is the notification id."""
        notification_id = notification.notification_id
        execution_input = saga_input(
            notification_id, notification.delivery_policy, request_id=notification.request_id
        )
        client = self.stepfunctions()
        try:
            arn: str = client.start_execution(
                stateMachineArn=self.state_machine_arn,
                name=notification_id,
                input=json.dumps(execution_input),
            )["executionArn"]
        except client.exceptions.ExecutionAlreadyExists:
            arn = self.state_machine_arn.replace(":stateMachine:", ":execution:") + f":{notification_id}"
        self.store.mark_started(notification_id, arn)
        return arn

    def status(self, client_id: str, notification_id: str) -> NotificationView:
        """The notification's status and timeline, as its owner sees it (others get NotificationNotFound)."""
        notification = self.store.get(notification_id)
        if notification.client_id != client_id:
            raise NotificationNotFound(notification_id)
        customer = notification.customer
        return NotificationView(
            notification_id=notification_id,
            order_reference=notification.order_reference,
            status=notification.status,
            status_reason=notification.status_reason,
            created_at=notification.created_at,
            updated_at=notification.updated_at,
            finished_at=notification.finished_at,
            execution_arn=notification.execution_arn,
            customer=MaskedCustomer(
                name=mask_name(customer.name),
                email=mask_email(customer.email) if customer.email else None,
                phone=mask_phone(customer.phone) if customer.phone else None,
            ),
            payment=PaymentView.model_validate(notification.payment.model_dump()),
            channels=notification.channels,
            timeline=self.store.timeline(notification_id),
        )

    # --- many notifications ---------------------------------------------------------------------
    def submit_bulk(
        self,
        client_id: str,
        bulk_key: str | None,
        raw_items: list[Any],
        request_id: str | None = None,
    ) -> BulkAccepted:
        """Validate each item, store the valid ones and queue them; the bulk consumer starts their sagas.

        Each item's idempotency key is its order reference, so a retried bulk request (or an item sent
        before on its own) never starts a second saga.
        """
        bulk_id = (
            str(uuid.uuid5(BULK_NAMESPACE, f"{client_id}\n{bulk_key}")) if bulk_key else str(uuid.uuid4())
        )
        request_hash = _items_hash(raw_items) if bulk_key else None
        stored_hash = self.store.bulk_request_hash(bulk_id) if bulk_key else None
        if stored_hash and stored_hash != request_hash:
            raise IdempotencyKeyReused(bulk_id)
        results: list[BulkItem] = []
        new: dict[str, Notification] = {}
        for index, raw in enumerate(raw_items):
            try:
                request = NotificationRequest.model_validate(raw)
            except ValidationError as error:
                errors = validation_errors(error, ("items", index))[:MAX_ERRORS_PER_ITEM]
                results.append(BulkItem(index=index, status="rejected", errors=errors))
                continue
            try:
                self.check_callback_url(request)
            except CallbackUrlRefused as refused:
                refusal = FieldError(
                    loc=["items", index, "callback_url"], type=refused.reason, message=refused.message
                )
                results.append(BulkItem(index=index, status="rejected", errors=[refusal]))
                continue
            try:
                self.check_templates(request, ("items", index))
            except TemplateProblem as refused_template:
                errors = [FieldError.model_validate(item) for item in refused_template.errors]
                results.append(BulkItem(index=index, status="rejected", errors=errors[:MAX_ERRORS_PER_ITEM]))
                continue
            try:
                self.refuse_suppressed(request)
            except RecipientSuppressed as refused_recipient:
                suppressed = FieldError(
                    loc=[
                        "items",
                        index,
                        "customer",
                        "email" if refused_recipient.channel == "email" else "phone",
                    ],
                    type="recipient_suppressed",
                    message=str(refused_recipient),
                )
                results.append(BulkItem(index=index, status="rejected", errors=[suppressed]))
                continue
            notification_id = notification_id_for(client_id, request.order_reference)
            if notification_id in new:
                results.append(BulkItem(index=index, status="duplicate", notification_id=notification_id))
                continue
            new[notification_id] = self._new(
                notification_id, client_id, request, bulk_id=bulk_id, request_id=request_id
            )
            results.append(BulkItem(index=index, status="accepted", notification_id=notification_id))

        existing = self.store.get_many(list(new))
        self.store.create_many(notification for nid, notification in new.items() if nid not in existing)
        # Queue every item whose saga has not started, including ones stored by an earlier attempt of
        # this request that failed before queueing them (starting is idempotent).
        self._enqueue(
            [nid for nid in new if nid not in existing or not existing[nid].execution_arn], request_id
        )
        self.store.create_bulk(
            Bulk(
                bulk_id=bulk_id,
                client_id=client_id,
                created_at=self.store.now(),
                item_count=len(results),
                items=results,
                request_hash=request_hash,
            )
        )
        return BulkAccepted(
            bulk_id=bulk_id,
            status_url=f"/notifications/bulk/{bulk_id}",
            accepted=sum(1 for result in results if result.status == "accepted"),
            rejected=sum(1 for result in results if result.status == "rejected"),
            items=results,
        )

    def start_queued(self, notification_id: str) -> str:
        """Bulk consumer: start one queued notification's saga (idempotent: the name is the id)."""
        return self.start(self.store.get(notification_id))

    def bulk_status(self, client_id: str, bulk_id: str) -> BulkView:
        bulk = self.store.get_bulk(bulk_id)
        if bulk.client_id != client_id:
            raise NotificationNotFound(bulk_id)
        ids = {item.notification_id for item in bulk.items if item.notification_id}
        current = self.store.statuses(sorted(ids))
        counts: dict[str, int] = {}
        items: list[BulkItemView] = []
        for stored in bulk.items:
            item = BulkItemView.model_validate(stored.model_dump())
            status = current.get(stored.notification_id or "")
            if status and stored.notification_id:
                item.notification_status = status
                item.status_url = status_path(stored.notification_id)
            # Rejected and duplicate entries count as such; the others by their notification's status.
            key = item.status if item.status != "accepted" else (item.notification_status or "accepted")
            counts[key] = counts.get(key, 0) + 1
            items.append(item)
        return BulkView(
            bulk_id=bulk_id,
            created_at=bulk.created_at,
            item_count=bulk.item_count,
            counts=counts,
            items=items,
        )

    # --- one order, one charge ------------------------------------------------------------------
    def _create_once_per_order(self, notification: Notification) -> bool:
        """Create the notification unless its order already has one holding (or taking) a charge.

        The order's claim item names its holder; it is taken in one transaction with the notification,
        so of two concurrent requests for one order only one is created. A holder that ended without a
        standing charge (``CHARGE_RELEASED_STATUSES``) hands the claim over. Orders stored before claims
        existed, or by a bulk request, are found through the ``ByOrderReference`` index.

        Returns False for a replay (this notification exists); raises ``OrderAlreadyCharged``.
        """
        client_id, order_reference = notification.client_id, notification.order_reference
        holder = self.store.order_claim(client_id, order_reference)
        if holder is None:
            for earlier in self.store.order_notifications(client_id, order_reference):
                other = earlier["notification_id"] != notification.notification_id
                if other and holds_charge(earlier["status"]):
                    raise OrderAlreadyCharged(earlier["notification_id"], earlier["status"])
        for _attempt in range(3):
            replacing = None
            if holder is not None and holder != notification.notification_id:
                current = self.store.get(holder)
                if holds_charge(current.status):
                    raise OrderAlreadyCharged(holder, current.status)
                replacing = holder
            claim = self.store.create_claiming_order(notification, replacing=replacing)
            if claim.created or claim.holder is None:
                return claim.created
            holder = claim.holder  # taken over meanwhile: judge the new holder
        raise OrderAlreadyCharged(str(holder), NotificationStatus.RUNNING)

    # --- internals ------------------------------------------------------------------------------
    def _enqueue(self, notification_ids: list[str], request_id: str | None = None) -> None:
        """Queue the ids for the bulk consumer, ``BULK_IDS_PER_MESSAGE`` per message, 10 messages per call."""
        if not notification_ids:
            return
        if not self.bulk_queue_url:
            raise ConfigurationError("BULK_QUEUE_URL is not set: the function's template entry must pass it")
        client = self.sqs()
        bodies = [
            QueuedNotifications(
                notification_ids=notification_ids[start : start + BULK_IDS_PER_MESSAGE],
                request_id=request_id,
            ).model_dump_json(exclude_none=True)
            for start in range(0, len(notification_ids), BULK_IDS_PER_MESSAGE)
        ]
        for start in range(0, len(bodies), 10):
            entries = [
                {"Id": str(n), "MessageBody": body} for n, body in enumerate(bodies[start : start + 10])
            ]
            answer = client.send_message_batch(QueueUrl=self.bulk_queue_url, Entries=entries)
            if answer.get("Failed"):
                # Stored but not queued: fail loudly so the client retries the (idempotent) bulk request.
                raise RuntimeError(f"{len(answer['Failed'])} bulk messages could not be queued")

    def _new(
        self,
        notification_id: str,
        client_id: str,
        request: NotificationRequest,
        bulk_id: str | None = None,
        request_id: str | None = None,
    ) -> Notification:
        return Notification.accepted(
            notification_id, client_id, request, at=self.store.now(), bulk_id=bulk_id, request_id=request_id
        )

    @staticmethod
    def _accepted(notification: Notification) -> Accepted:
        return Accepted(
            notification_id=notification.notification_id,
            order_reference=notification.order_reference,
            status=notification.status.value,
            status_url=status_path(notification.notification_id),
            execution_arn=notification.execution_arn,
        )


def _catalog() -> TemplateCatalog:
    from tidings.templates.catalog import get_catalog

    return get_catalog()


def _items_hash(raw_items: list[Any]) -> str:
    """The items' fingerprint: key order and spacing do not change it, any value does."""
    canonical = json.dumps(raw_items, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8", errors="surrogatepass")).hexdigest()


def service_for(settings: ServiceSettings) -> NotificationService:
    """A service on ``settings``' table, state machine and bulk queue (boto3 clients built on first use)."""
    import boto3

    return NotificationService(
        store=NotificationStore(boto3.resource("dynamodb").Table(settings.notifications_table)),
        stepfunctions=lru_cache(maxsize=1)(lambda: boto3.client("stepfunctions")),
        sqs=lru_cache(maxsize=1)(lambda: boto3.client("sqs")),
        state_machine_arn=settings.state_machine_arn,
        bulk_queue_url=settings.bulk_queue_url,
        callback_http_hosts=host_list(settings.callback_http_allowed_hosts),
        suppressions=lru_cache(maxsize=1)(lambda: _suppression_service(settings.suppressions_table)),
    )


def _suppression_service(table: str | None) -> SuppressionService | None:
    if not table:
        return None
    import boto3

    from tidings.audit import get_audit_log
    from tidings.audit.suppressions import AuditedSuppressionChanges
    from tidings.suppressions.service import SuppressionService
    from tidings.suppressions.store import SuppressionStore

    return SuppressionService(
        SuppressionStore(boto3.resource("dynamodb").Table(table)),
        audit=AuditedSuppressionChanges(get_audit_log()),  # its table is touched on the first change
    )
