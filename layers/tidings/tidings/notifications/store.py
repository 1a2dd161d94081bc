"""The notification table: one META item per notification, EVENT items for its timeline.

Key design (table ``NOTIFICATIONS_TABLE``, keys ``pk``/``sk``), written here and nowhere else:

* ``NOTIFICATION#<id>`` / ``META``: request content, contact details, status, channel outcomes,
  payment ids, the Step Functions execution ARN and, while the saga waits for 3-D Secure, the task token
  (``tidings.notifications.models.Notification``).
* ``NOTIFICATION#<id>`` / ``EVENT#<iso time>#<suffix>``: the timeline, read back in order with one Query.
  The suffix is random, or an identity (a webhook's, a refund's) whose entry is written at most once.
* ``PAYMENT_INTENT#<pi id>`` / ``META``: which notification a PaymentIntent belongs to (webhooks).
* ``ORDER#<client id>#<order reference>`` / ``META``: the notification that holds the order's charge
  (``claimed_by``), written in one transaction with that notification (one order, one charge). It has
  no ``client_id``/``order_reference``/``created_at`` attributes, so the listing indexes never see it.
* ``BULK#<bulk id>`` / ``META`` and ``PAGE#<n>``: a bulk request and its per-item results.

Every writer (the saga's steps, the notify API, later tries, the webhook processor) goes through
``NotificationStore``; its one clock stamps every write.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from tidings.notifications.models import (
    FINAL_STATUSES,
    Bulk,
    BulkItem,
    ChannelStatus,
    Compensation,
    Notification,
    NotificationStatus,
    TimelineEvent,
    statuses_replaceable_by,
)

#: Bulk per-item results per table item (each well under DynamoDB's 400 KB item limit).
BULK_PAGE_SIZE = 500

# --- the key scheme ---------------------------------------------------------------------------------
META = "META"
EVENT_PREFIX = "EVENT#"
PAGE_PREFIX = "PAGE#"


def notification_pk(notification_id: str) -> str:
    return f"NOTIFICATION#{notification_id}"


def notification_key(notification_id: str) -> dict[str, str]:
    return {"pk": notification_pk(notification_id), "sk": META}


def payment_intent_key(payment_intent_id: str) -> dict[str, str]:
    return {"pk": f"PAYMENT_INTENT#{payment_intent_id}", "sk": META}


def order_key(client_id: str, order_reference: str) -> dict[str, str]:
    return {"pk": f"ORDER#{client_id}#{order_reference}", "sk": META}


#: The notifications table's index by order reference (template.yaml, ``NotificationsTable``).
ORDER_INDEX = "ByOrderReference"


@dataclass(frozen=True)
class OrderClaim:
    """``create_claiming_order``'s answer: created, or not (a replay, or ``holder`` holds the order)."""

    created: bool
    holder: str | None = None


def bulk_pk(bulk_id: str) -> str:
    return f"BULK#{bulk_id}"


def event_sk(at: str, suffix: str) -> str:
    return f"{EVENT_PREFIX}{at}#{suffix}"


# --- the clock --------------------------------------------------------------------------------------
Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    """The table's time format: UTC, milliseconds, ``Z`` (sorts as text, so timelines sort by it)."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def now_iso() -> str:
    """The time now, as the table records it (the default clock of every ``NotificationStore``)."""
    return iso(utc_now())


def iso_from_epoch(epoch: float) -> str:
    return iso(datetime.fromtimestamp(epoch, UTC))


class NotificationNotFound(LookupError):
    """No notification with that id (or not visible to the caller)."""


class NotificationStore:
    """Reads and writes notifications. Takes a boto3 DynamoDB ``Table`` so tests can hand in moto's."""

    def __init__(self, table: Any, clock: Clock = utc_now) -> None:
        self._table = table
        self._clock = clock

    def now(self) -> str:
        """The current time as every item of the table records it."""
        return iso(self._clock())

    # --- notifications --------------------------------------------------------------------------
    def create(self, notification: Notification) -> bool:
        """Store a new notification; False when one with this id exists already (a replayed request)."""
        from botocore.exceptions import ClientError

        try:
            self._table.put_item(Item=_item(notification), ConditionExpression="attribute_not_exists(pk)")
        except ClientError as exc:
            if _conditional_failed(exc):
                return False
            raise
        return True

    def create_many(self, notifications: Iterable[Notification]) -> None:
        """Store many new notifications (bulk). Existing ids are overwritten only if never started."""
        with self._table.batch_writer(overwrite_by_pkeys=["pk", "sk"]) as batch:
            for notification in notifications:
                batch.put_item(Item=_item(notification))

    def get(self, notification_id: str) -> Notification:
        found = self._table.get_item(Key=notification_key(notification_id), ConsistentRead=True).get("Item")
        if not found:
            raise NotificationNotFound(f"no notification {notification_id}")
        return Notification.model_validate(plain(found))

    def exists(self, notification_id: str) -> bool:
        key = notification_key(notification_id)
        return "Item" in self._table.get_item(Key=key, ConsistentRead=True, ProjectionExpression="pk")

    def get_many(self, notification_ids: list[str]) -> dict[str, Notification]:
        """META items by id (missing ids are left out)."""
        found = (Notification.model_validate(raw) for raw in self._get_metas(notification_ids))
        return {notification.notification_id: notification for notification in found}

    def statuses(self, notification_ids: list[str]) -> dict[str, NotificationStatus]:
        """Only the status of each (missing ids are left out): what a bulk request's status page shows,
        read without the rest of a thousand notifications."""
        projection = {
            "ProjectionExpression": "notification_id, #status",
            "ExpressionAttributeNames": {"#status": "status"},
        }
        return {
            raw["notification_id"]: NotificationStatus(raw["status"])
            for raw in self._get_metas(notification_ids, projection)
        }

    def _get_metas(
        self, notification_ids: list[str], projection: dict[str, Any] | None = None
    ) -> Iterator[Any]:
        """The META items of ``notification_ids``, plain; 100 keys per BatchGetItem call."""
        resource = self._table.meta.client
        for start in range(0, len(notification_ids), 100):
            keys = [notification_key(nid) for nid in notification_ids[start : start + 100]]
            request = {self._table.name: {"Keys": keys, **(projection or {})}}
            while request:
                answer = resource.batch_get_item(RequestItems=request)
                # The resource's client already deserialises.
                yield from (plain(raw) for raw in answer["Responses"].get(self._table.name, []))
                request = answer.get("UnprocessedKeys") or {}

    def timeline(self, notification_id: str) -> list[TimelineEvent]:
        from boto3.dynamodb.conditions import Key

        condition = Key("pk").eq(notification_pk(notification_id)) & Key("sk").begins_with(EVENT_PREFIX)
        return [TimelineEvent.model_validate(item) for item in self._query(condition)]

    def add_event(self, notification_id: str, event: TimelineEvent, *, once_as: str | None = None) -> bool:
        """Append ``event`` to the timeline. With ``once_as`` (an identity: a webhook's, a refund's) the
        entry is written at most once, and False says it was there already."""
        from botocore.exceptions import ClientError

        item = {
            "pk": notification_pk(notification_id),
            "sk": event_sk(event.at, once_as or uuid.uuid4().hex[:8]),
            **_dynamo_safe(event.model_dump(mode="json", exclude_none=True)),
        }
        if once_as is None:
            self._table.put_item(Item=item)
            return True
        try:
            self._table.put_item(Item=item, ConditionExpression="attribute_not_exists(sk)")
        except ClientError as exc:
            if _conditional_failed(exc):
                return False
            raise
        return True

    def update(self, notification_id: str, **fields: Any) -> None:
        """Set top-level attributes (and ``updated_at``)."""
        self._set(notification_id, {**fields, "updated_at": self.now()})

    def set_status(
        self, notification_id: str, status: NotificationStatus, *, reason: str | None = None
    ) -> None:
        """Move a notification to ``status`` (and ``status_reason``, when given) before or after the end."""
        fields: dict[str, str] = {"status": NotificationStatus(status).value}
        if reason is not None:
            fields["status_reason"] = reason
        self.update(notification_id, **fields)

    def start_running(self, notification_id: str) -> Notification:
        """Move the notification to ``running`` and return it as it is then: one UpdateItem that answers
        with the item (``ALL_NEW``), instead of a read and a write."""
        running = {"status": NotificationStatus.RUNNING.value, "updated_at": self.now()}
        return Notification.model_validate(self._set(notification_id, running, answer=True))

    def mark_started(self, notification_id: str, execution_arn: str) -> None:
        self.update(notification_id, execution_arn=execution_arn, started_at=self.now())

    def update_channel(
        self,
        notification_id: str,
        channel: str,
        status: ChannelStatus | None = None,
        *,
        with_status: Mapping[str, Any] | None = None,
        **fields: Any,
    ) -> bool:
        """Set ``channels.<channel>``'s status forward only, and its other attributes.

        The one writer of a channel's status, for the saga's steps, RecordOutcome, later tries and
        webhooks alike. ``status`` is applied with a DynamoDB condition (the current status is one
        ``status`` may replace, ``CHANNEL_STATUS_RANK``), so a write that arrives late (the send step's
        ``sent`` after the delivery webhook, RecordOutcome's ``sent`` after an early bounce) cannot move
        it back, however the writers interleave. ``with_status`` (a reason, the provider's own delivery
        status) belongs to that status and is written only with it; ``fields`` (provider, message id)
        describe the message and are written either way.

        Returns False when the status was kept (the other fields are still written).
        """
        from boto3.dynamodb.conditions import Attr
        from botocore.exceptions import ClientError

        at = self.now()
        prefix = f"channels.{channel}"
        values = {f"{prefix}.{name}": value for name, value in fields.items()}
        values |= {"updated_at": at, f"{prefix}.updated_at": at}
        if status is None:
            self._set(notification_id, values)
            return True
        status = ChannelStatus(status)
        forward = {f"{prefix}.status": status.value}
        forward |= {f"{prefix}.{name}": value for name, value in (with_status or {}).items()}
        current = Attr(f"{prefix}.status")
        condition = (
            Attr("pk").exists()
            & Attr(prefix).exists()
            & (current.not_exists() | current.is_in(statuses_replaceable_by(status)))
        )
        try:
            self._set(notification_id, values | forward, condition=condition)
        except ClientError as exc:
            if not _conditional_failed(exc):
                raise
            # Kept: the status is already as far or further. The message's own attributes still count;
            # either way a notification that does not exist raises NotificationNotFound.
            if fields:
                self._set(notification_id, values)
            elif not self.exists(notification_id):
                raise NotificationNotFound(f"no notification {notification_id}") from None
            return False
        return True

    def finish(self, notification_id: str, status: NotificationStatus, reason: str | None) -> None:
        """Record the saga's final status; the waiting token (if any) is no longer valid."""
        at = self.now()
        values = {
            "status": NotificationStatus(status).value,
            "status_reason": reason,
            "finished_at": at,
            "updated_at": at,
        }
        self._set(notification_id, values, remove=("payment_task_token",))

    def store_charge_task_token(self, notification_id: str, task_token: str) -> None:
        """The saga waits for its uncertain charge to be reconciled: where ReconcilePayment finds it."""
        self.update(notification_id, charge_task_token=task_token)

    def clear_charge_task_token(self, notification_id: str, task_token: str) -> None:
        """Forget the reconciliation wait's token, only if it is still ``task_token`` (a later wait, after
        a charge that failed again, keeps its own)."""
        self._remove_token(notification_id, "charge_task_token", task_token)

    # --- payment --------------------------------------------------------------------------------
    def record_charge(
        self, notification_id: str, *, payment_intent_id: str, status: str, next_action_url: str | None
    ) -> None:
        """The PaymentIntent a charge created or found, and where the customer finishes 3-D Secure; its
        status forward only (a retried charge's answer never undoes a webhook's outcome). One write; a
        second, of the ids only, when the status was kept."""
        from botocore.exceptions import ClientError

        ids = {"payment.payment_intent_id": payment_intent_id, "payment.next_action_url": next_action_url}
        values = {**ids, "payment.status": status, "updated_at": self.now()}
        try:
            self._set(notification_id, values, _payment_forward(status))
        except ClientError as exc:
            if not _conditional_failed(exc):
                raise
            self.update(notification_id, **ids)  # NotificationNotFound when missing

    def record_payment_intent(self, notification_id: str, payment_intent_id: str) -> None:
        """The PaymentIntent found for a charge whose answer was lost (see ``link_payment_intent`` too)."""
        self.update(notification_id, **{"payment.payment_intent_id": payment_intent_id})

    def set_payment_status(self, notification_id: str, status: str) -> bool:
        """Move ``payment.status`` forward only (``PAYMENT_STATUS_RANK``): the saga's own results and
        every Stripe webhook write through here, so a late or replayed answer never moves it back (a
        ``requires_action`` after the 3-D Secure webhook's ``succeeded``). False when it was kept."""
        from botocore.exceptions import ClientError

        try:
            self._set(
                notification_id,
                {"payment.status": status, "updated_at": self.now()},
                _payment_forward(status),
            )
        except ClientError as exc:
            if not _conditional_failed(exc):
                raise
            self.get(notification_id)  # NotificationNotFound when missing; else the status was kept
            return False
        return True

    def record_refund(self, notification_id: str, *, refund_id: str, refund_status: str) -> None:
        self.update(
            notification_id,
            **{
                "payment.refund_id": refund_id,
                "payment.refund_status": refund_status,
                "payment.status": "refunded",
            },
        )

    def record_shop_refund(
        self,
        notification_id: str,
        *,
        refund_id: str,
        refund_status: str,
        amount_refunded: int,
        status: NotificationStatus,
    ) -> None:
        """A refund the shop asked for after the saga ended: the refund, how much Stripe has refunded
        in all, and the notification ``refunded`` or ``partially_refunded``, in one write."""
        fully = status == NotificationStatus.REFUNDED
        self.update(
            notification_id,
            **{
                "payment.refund_id": refund_id,
                "payment.refund_status": refund_status,
                "payment.amount_refunded": amount_refunded,
                "payment.status": "refunded" if fully else "partially_refunded",
                "status": NotificationStatus(status).value,
                "status_reason": "refunded_by_shop",
            },
        )

    def begin_cancel(self, notification_id: str, token_attribute: str, task_token: str) -> bool:
        """The shop cancels a waiting saga: take its task token away (so no webhook or later try
        resumes it) and mark the notification ``cancelling``, only while it still holds ``task_token``.
        False when the wait ended meanwhile (the token was used or replaced)."""
        from boto3.dynamodb.conditions import Attr
        from botocore.exceptions import ClientError

        at = self.now()
        values = {
            "status": NotificationStatus.CANCELLING.value,
            "status_reason": "cancelled_by_shop",
            "cancel_requested_at": at,
            "updated_at": at,
        }
        condition = Attr("pk").exists() & Attr(token_attribute).eq(task_token)
        try:
            self._set(notification_id, values, condition, remove=(token_attribute,))
        except ClientError as exc:
            if not _conditional_failed(exc):
                raise
            return False
        return True

    def store_sms_task_token(self, notification_id: str, task_token: str) -> None:
        """A required SMS waits on the outage queue: where the shop's cancel finds its saga's token."""
        self.update(notification_id, sms_task_token=task_token)

    def clear_sms_task_token(self, notification_id: str, task_token: str) -> None:
        self._remove_token(notification_id, "sms_task_token", task_token)

    def compensate(self, notification_id: str, compensation: Compensation) -> None:
        """A required channel failed for good after the saga ended and the payment was refunded: record
        the refund as the saga's RefundPayment step does, the channel ``failed`` and the notification
        ``compensated``, in one write, and the refund in the timeline once.

        The channel's ``failed`` is the top of ``CHANNEL_STATUS_RANK``, so setting it unconditionally is
        forward-only too.
        """
        at = self.now()
        channel, refund_id = compensation.channel, compensation.refund_id
        values = {
            "payment.refund_id": refund_id,
            "payment.refund_status": compensation.refund_status,
            "payment.status": "refunded",
            f"channels.{channel}.status": ChannelStatus.FAILED.value,
            f"channels.{channel}.reason": compensation.reason,
            "status": NotificationStatus.COMPENSATED.value,
            "status_reason": f"required_{channel}_failed",
            "finished_at": at,
            "updated_at": at,
        }
        self._set(notification_id, values, remove=("payment_task_token",))
        event = TimelineEvent(
            step="RefundPayment",
            outcome="refunded",
            at=at,
            provider="stripe",
            details={
                "refund_id": refund_id,
                "payment_intent_id": compensation.payment_intent_id,
                "reason": f"{channel}_{compensation.reason}",
            },
        )
        self.add_event(notification_id, event, once_as=f"refund-{refund_id}")

    # --- payment <-> notification (3-D Secure webhooks) ---------------------------------------------
    def link_payment_intent(self, notification_id: str, payment_intent_id: str) -> None:
        self._table.put_item(
            Item={
                **payment_intent_key(payment_intent_id),
                "notification_id": notification_id,
                "payment_intent_id": payment_intent_id,
            }
        )

    def notification_for_payment_intent(self, payment_intent_id: str) -> str | None:
        item = self._table.get_item(Key=payment_intent_key(payment_intent_id), ConsistentRead=True).get(
            "Item"
        )
        return str(item["notification_id"]) if item and item.get("notification_id") else None

    def store_task_token(self, notification_id: str, task_token: str) -> None:
        self.update(
            notification_id,
            payment_task_token=task_token,
            status=NotificationStatus.AWAITING_PAYMENT_ACTION.value,
        )

    def clear_task_token(self, notification_id: str, task_token: str | None = None) -> None:
        """Forget the waiting saga's token; given ``task_token``, only if it is still that one (a new
        wait keeps its own)."""
        self._remove_token(notification_id, "payment_task_token", task_token)

    def _remove_token(self, notification_id: str, attribute: str, task_token: str | None) -> None:
        """REMOVE a stored task token; given ``task_token``, only while the item still holds that one."""
        from botocore.exceptions import ClientError

        condition = (
            {}
            if task_token is None
            else {
                "ConditionExpression": f"{attribute} = :token",
                "ExpressionAttributeValues": {":token": task_token},
            }
        )
        try:
            self._table.update_item(
                Key=notification_key(notification_id), UpdateExpression=f"REMOVE {attribute}", **condition
            )
        except ClientError as exc:
            if not _conditional_failed(exc):
                raise

    # --- one order, one charge ------------------------------------------------------------------
    def order_claim(self, client_id: str, order_reference: str) -> str | None:
        """The id of the notification that holds this client's order, or None if none does."""
        key = order_key(client_id, order_reference)
        item = self._table.get_item(Key=key, ConsistentRead=True).get("Item")
        return str(item["claimed_by"]) if item else None

    def create_claiming_order(self, notification: Notification, replacing: str | None = None) -> OrderClaim:
        """Store a new notification and make it its order's holder, atomically (one transaction).

        The claim is taken when the order has none, when this notification holds it already, or when
        ``replacing`` (a holder the caller found holds no charge) still holds it. Two concurrent requests
        for one order therefore never both create a notification.
        """
        from botocore.exceptions import ClientError

        notification_id = notification.notification_id
        key = order_key(notification.client_id, notification.order_reference)
        claim = {**key, "claimed_by": notification_id, "claimed_at": notification.created_at}
        condition = "attribute_not_exists(pk) OR claimed_by = :me"
        values: dict[str, Any] = {":me": notification_id}
        if replacing:
            condition += " OR claimed_by = :replacing"
            values[":replacing"] = replacing
        table = self._table.name
        try:
            # The resource's client: plain values in, plain values out.
            self._table.meta.client.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": table,
                            "Item": _item(notification),
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                    {
                        "Put": {
                            "TableName": table,
                            "Item": claim,
                            "ConditionExpression": condition,
                            "ExpressionAttributeValues": values,
                        }
                    },
                ]
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "TransactionCanceledException":
                raise
            reasons = [reason.get("Code") for reason in exc.response.get("CancellationReasons", [])]
            if reasons and reasons[0] == "ConditionalCheckFailed":
                return OrderClaim(created=False)  # a replay: this notification exists already
            holder = self.order_claim(notification.client_id, notification.order_reference)
            return OrderClaim(created=False, holder=holder)
        return OrderClaim(created=True)

    def order_notifications(self, client_id: str, order_reference: str) -> list[dict[str, Any]]:
        """This client's notifications for one order (the ``ByOrderReference`` index: one Query, no Scan).

        The index is eventually consistent and projects the listing's fields (id, status, ...) only.
        """
        from boto3.dynamodb.conditions import Attr, Key

        return list(
            self._query(
                Key("order_reference").eq(order_reference),
                IndexName=ORDER_INDEX,
                ConsistentRead=False,
                FilterExpression=Attr("client_id").eq(client_id),
            )
        )

    # --- bulk -----------------------------------------------------------------------------------
    def create_bulk(self, bulk: Bulk) -> None:
        """The bulk request and its per-item results (accepted or rejected, with the reason).

        Results are kept in pages of ``BULK_PAGE_SIZE`` entries, so a 1,000-item request costs a couple
        of writes rather than one per item (the API answers within API Gateway's 30 s).
        """
        items = [item.model_dump(mode="json", exclude_none=True) for item in bulk.items]
        pages = [items[start : start + BULK_PAGE_SIZE] for start in range(0, len(items), BULK_PAGE_SIZE)]
        meta = bulk.model_dump(mode="json", exclude={"items"})
        with self._table.batch_writer() as batch:
            batch.put_item(Item={"pk": bulk_pk(bulk.bulk_id), "sk": META, **meta, "page_count": len(pages)})
            for number, page in enumerate(pages):
                batch.put_item(
                    Item={
                        "pk": bulk_pk(bulk.bulk_id),
                        "sk": f"{PAGE_PREFIX}{number:05d}",
                        "items": _dynamo_safe(page),
                    }
                )

    def bulk_request_hash(self, bulk_id: str) -> str | None:
        """The stored bulk request's ``request_hash`` ("" when it has none), None when there is none."""
        item = self._table.get_item(
            Key={"pk": bulk_pk(bulk_id), "sk": META}, ProjectionExpression="request_hash, bulk_id"
        ).get("Item")
        if item is None:
            return None
        return str(item.get("request_hash") or "")

    def get_bulk(self, bulk_id: str) -> Bulk:
        from boto3.dynamodb.conditions import Key

        rows = list(self._query(Key("pk").eq(bulk_pk(bulk_id)), keep_keys=True))
        meta = next((row for row in rows if row["sk"] == META), None)
        if meta is None:
            raise NotificationNotFound(f"no bulk request {bulk_id}")
        pages = sorted((row for row in rows if row["sk"].startswith(PAGE_PREFIX)), key=lambda row: row["sk"])
        items = [BulkItem.model_validate(item) for page in pages for item in page["items"]]
        return Bulk.model_validate({**meta, "items": items})

    # --- what the reconciliation sweeper looks at ----------------------------------------------
    def unsettled(
        self, created_from: str, created_to: str, channels: Iterable[str]
    ) -> Iterator[Notification]:
        """Notifications created in ``[created_from, created_to]`` still ``accepted`` or with a channel
        still ``sent`` (no delivery report yet), read with a filtered Scan, page after page.

        A Scan reads the whole table once per sweep (the filter only trims what comes back): fine for the
        volumes a notification table holds within its lookback, and no index to keep in step with every
        writer; docs/saga.md says when an index would pay.
        """
        from boto3.dynamodb.conditions import Attr, ConditionBase

        waiting: ConditionBase = Attr("status").eq(NotificationStatus.ACCEPTED.value)
        for channel in channels:
            waiting = waiting | Attr(f"channels.{channel}.status").eq(ChannelStatus.SENT.value)
        condition = (
            Attr("sk").eq(META)
            & Attr("pk").begins_with(notification_pk(""))
            & Attr("created_at").between(created_from, created_to)
            & waiting
        )
        scan: dict[str, Any] = {"FilterExpression": condition, "ConsistentRead": True}
        while True:
            page = self._table.scan(**scan)
            for raw in page["Items"]:
                yield Notification.model_validate(plain(raw))
            if "LastEvaluatedKey" not in page:
                return
            scan["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    # --- internals ------------------------------------------------------------------------------
    def _query(
        self, key_condition: Any, *, keep_keys: bool = False, **options: Any
    ) -> Iterator[dict[str, Any]]:
        """Every item a Query finds, page after page, as plain values (``pk``/``sk`` dropped unless kept).

        ``options`` go to the Query as they are (``IndexName``, ``ScanIndexForward``, a filter...)."""
        query: dict[str, Any] = {"KeyConditionExpression": key_condition, "ConsistentRead": True, **options}
        while True:
            page = self._table.query(**query)
            for raw in page["Items"]:
                item = plain(raw)
                if not keep_keys:
                    item.pop("pk", None)
                    item.pop("sk", None)
                yield item
            if "LastEvaluatedKey" not in page:
                return
            query["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def _set(
        self,
        notification_id: str,
        values: dict[str, Any],
        condition: Any = None,
        *,
        remove: tuple[str, ...] = (),
        answer: bool = False,
    ) -> dict[str, Any]:
        """SET ``values`` (and REMOVE ``remove``) on an existing notification; with ``condition``, a
        failed check is raised as is. With ``answer``, the item as written comes back in the same
        request (``ALL_NEW``); otherwise an empty dict."""
        from boto3.dynamodb.conditions import Attr

        names, assigns, attr_values = _assignments(values)
        expression = "SET " + ", ".join(assigns)
        if remove:
            expression += " REMOVE " + ", ".join(remove)
        try:
            written = self._table.update_item(
                Key=notification_key(notification_id),
                UpdateExpression=expression,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=attr_values,
                ConditionExpression=condition if condition is not None else Attr("pk").exists(),
                ReturnValues="ALL_NEW" if answer else "NONE",
            )
        except self._table.meta.client.exceptions.ConditionalCheckFailedException:
            if condition is not None:
                raise  # the caller tells a kept status from a missing notification
            raise NotificationNotFound(f"no notification {notification_id}") from None
        return plain(written["Attributes"]) if answer else {}


#: The order ``payment.status`` moves in: pending, then waiting on the customer, then an outcome, then
#: refunded. A status replaces only lower ranks (and itself); unknown statuses rank with the outcomes.
PAYMENT_STATUS_RANK: dict[str, int] = {
    "pending": 0,
    "requires_action": 1,
    "processing": 1,
    "succeeded": 2,
    "declined": 2,
    "failed": 2,
    "canceled": 2,
    "partially_refunded": 3,
    "refunded": 4,
}


def payment_statuses_replaceable_by(status: str) -> list[str]:
    rank = PAYMENT_STATUS_RANK.get(status, 2)
    return [name for name, other in PAYMENT_STATUS_RANK.items() if other < rank or name == status]


def _payment_forward(status: str) -> Any:
    """The condition of a ``payment.status`` write: the notification exists and its status may move on."""
    from boto3.dynamodb.conditions import Attr

    current = Attr("payment.status")
    return Attr("pk").exists() & (
        current.not_exists() | current.is_in(payment_statuses_replaceable_by(status))
    )


def is_final(status: str) -> bool:
    return status in FINAL_STATUSES


def _item(notification: Notification) -> dict[str, Any]:
    body: dict[str, Any] = _dynamo_safe(notification.model_dump(mode="json", exclude_none=True))
    return {**notification_key(notification.notification_id), **body}


def _conditional_failed(exc: Any) -> bool:
    return bool(exc.response["Error"]["Code"] == "ConditionalCheckFailedException")


def _assignments(values: dict[str, Any]) -> tuple[dict[str, str], list[str], dict[str, Any]]:
    """UpdateExpression pieces for dotted paths (``channels.email.status``) with safe placeholders."""
    names: dict[str, str] = {}
    assigns: list[str] = []
    attr_values: dict[str, Any] = {}
    for index, (path, value) in enumerate(values.items()):
        parts = []
        for part in path.split("."):
            placeholder = f"#f{len(names)}"
            names[placeholder] = part
            parts.append(placeholder)
        attr_values[f":u{index}"] = _dynamo_safe(value)
        assigns.append(f"{'.'.join(parts)} = :u{index}")
    return names, assigns, attr_values


def _dynamo_safe(value: Any) -> Any:
    """DynamoDB refuses floats and empty strings in some places: turn floats into Decimals."""
    from decimal import Decimal

    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, dict):
        return {key: _dynamo_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_dynamo_safe(item) for item in value]
    return value


def plain(value: Any) -> Any:
    """Decimals back to int/float so items serialise as JSON."""
    from decimal import Decimal

    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain(item) for item in value]
    return value


@lru_cache(maxsize=1)
def get_store() -> NotificationStore:
    """The store for ``NOTIFICATIONS_TABLE``, built once per container (no I/O until first use)."""
    import boto3

    from tidings.notifications.settings import store_settings

    return NotificationStore(boto3.resource("dynamodb").Table(store_settings().notifications_table))
