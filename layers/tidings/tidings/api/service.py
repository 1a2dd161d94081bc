"""The notify API's domain: accept a notification (once), start its saga, report its status; bulk.

No API Gateway event or HTTP response here: ``tidings.api.http`` maps these results.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from pydantic import ValidationError

from tidings.api.settings import ServiceSettings, service_settings
from tidings.config import ConfigurationError
from tidings.notifications.models import ChannelStatus, NotificationRequest, NotificationStatus
from tidings.notifications.store import NotificationNotFound, NotificationStore, now_iso
from tidings.observability import mask_email, mask_phone
from tidings.saga.keys import notification_id_for
from tidings.saga.result_paths import execution_input as saga_input

BULK_NAMESPACE = uuid.UUID("0b8e3a5c-7f0e-4d55-8c3e-5e9a1f6b2d17")
#: Notification ids per bulk queue message: one consumer invocation starts this many sagas.
BULK_IDS_PER_MESSAGE = 10
#: Validation errors kept per rejected bulk item (the answer stays small for a batch of bad items).
MAX_ERRORS_PER_ITEM = 5


def status_path(notification_id: str) -> str:
    return f"/notifications/{notification_id}"


def validation_errors(error: ValidationError, prefix: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    """Pydantic errors as a machine-readable list, without the offending input (it may be personal data)."""
    return [
        {"loc": [*prefix, *item["loc"]], "type": item["type"], "message": item["msg"]}
        for item in error.errors()
    ]


@dataclass
class NotificationService:
    store: NotificationStore
    stepfunctions: Callable[[], Any]
    sqs: Callable[[], Any]
    state_machine_arn: str
    bulk_queue_url: str | None = None

    # --- one notification -----------------------------------------------------------------------
    def submit(self, client_id: str, idempotency_key: str, request: NotificationRequest) -> dict[str, Any]:
        """Store the notification and start its saga; a replay returns the first submission's answer."""
        notification_id = notification_id_for(client_id, idempotency_key)
        if not self.store.create(self._item(notification_id, client_id, request)):
            existing = self.store.get(notification_id)
            if existing.get("execution_arn"):
                return self._accepted(existing)
        arn = self.start(notification_id)
        return self._accepted(self.store.get(notification_id) | {"execution_arn": arn})

    def start(self, notification_id: str) -> str:
        """Start (or find) the one execution of this notification: its name is the notification id."""
        notification = self.store.get(notification_id)
        execution_input = saga_input(
            notification_id,
            {name: channel["policy"] for name, channel in notification["channels"].items()},
        )
        client = self.stepfunctions()
        try:
            arn = client.start_execution(
                stateMachineArn=self.state_machine_arn,
                name=notification_id,
                input=json.dumps(execution_input),
            )["executionArn"]
        except client.exceptions.ExecutionAlreadyExists:
            arn = self.state_machine_arn.replace(":stateMachine:", ":execution:") + f":{notification_id}"
        self.store.update(notification_id, execution_arn=arn, started_at=now_iso())
        return arn

    def status(self, client_id: str, notification_id: str) -> dict[str, Any]:
        """The notification's status and timeline, as its owner sees it (others get NotificationNotFound)."""
        notification = self.store.get(notification_id)
        if notification.get("client_id") != client_id:
            raise NotificationNotFound(notification_id)
        customer = notification["customer"]
        payment = notification["payment"]
        return {
            "notification_id": notification_id,
            "order_reference": notification["order_reference"],
            "status": notification["status"],
            "status_reason": notification.get("status_reason"),
            "created_at": notification["created_at"],
            "updated_at": notification.get("updated_at"),
            "finished_at": notification.get("finished_at"),
            "execution_arn": notification.get("execution_arn"),
            "customer": {
                "name": customer["name"],
                "email": mask_email(customer["email"]),
                "phone": mask_phone(customer["phone"]),
            },
            "payment": {
                key: payment.get(key)
                for key in (
                    "amount",
                    "currency",
                    "status",
                    "payment_intent_id",
                    "next_action_url",
                    "refund_id",
                    "refund_status",
                )
            },
            "channels": notification["channels"],
            "timeline": self.store.timeline(notification_id),
        }

    # --- many notifications ---------------------------------------------------------------------
    def submit_bulk(self, client_id: str, bulk_key: str | None, raw_items: list[Any]) -> dict[str, Any]:
        """Validate each item, store the valid ones and queue them; the bulk consumer starts their sagas.

        Each item's idempotency key is its order reference, so a retried bulk request (or an item sent
        before on its own) never starts a second saga.
        """
        bulk_id = (
            str(uuid.uuid5(BULK_NAMESPACE, f"{client_id}\n{bulk_key}")) if bulk_key else str(uuid.uuid4())
        )
        results: list[dict[str, Any]] = []
        new_items: dict[str, dict[str, Any]] = {}
        for index, raw in enumerate(raw_items):
            try:
                request = NotificationRequest.model_validate(raw)
            except ValidationError as error:
                results.append(
                    {
                        "index": index,
                        "status": "rejected",
                        "errors": validation_errors(error, ("items", index))[:MAX_ERRORS_PER_ITEM],
                    }
                )
                continue
            notification_id = notification_id_for(client_id, request.order_reference)
            if notification_id in new_items:
                results.append({"index": index, "status": "duplicate", "notification_id": notification_id})
                continue
            new_items[notification_id] = self._item(notification_id, client_id, request, bulk_id=bulk_id)
            results.append({"index": index, "status": "accepted", "notification_id": notification_id})

        existing = self.store.get_many(list(new_items))
        self.store.create_many([item for nid, item in new_items.items() if nid not in existing])
        # Queue every item whose saga has not started, including ones stored by an earlier attempt of
        # this request that failed before queueing them (starting is idempotent).
        self._enqueue([nid for nid in new_items if not existing.get(nid, {}).get("execution_arn")])
        self.store.create_bulk(bulk_id, client_id, results)
        accepted = sum(1 for result in results if result["status"] == "accepted")
        return {
            "bulk_id": bulk_id,
            "status_url": f"/notifications/bulk/{bulk_id}",
            "accepted": accepted,
            "rejected": sum(1 for result in results if result["status"] == "rejected"),
            "items": results,
        }

    def start_queued(self, notification_id: str) -> str:
        """Bulk consumer: start one queued notification's saga (idempotent: the name is the id)."""
        return self.start(notification_id)

    def bulk_status(self, client_id: str, bulk_id: str) -> dict[str, Any]:
        meta, items = self.store.get_bulk(bulk_id)
        if meta.get("client_id") != client_id:
            raise NotificationNotFound(bulk_id)
        ids = [item["notification_id"] for item in items if item.get("notification_id")]
        current = self.store.get_many(sorted(set(ids)))
        counts: dict[str, int] = {}
        for item in items:
            notification = current.get(item.get("notification_id", ""))
            if notification:
                item["notification_status"] = notification["status"]
                item["status_url"] = status_path(notification["notification_id"])
            # Rejected and duplicate entries count as such; the others by their notification's status.
            key = (
                item["status"]
                if item["status"] != "accepted"
                else item.get("notification_status", "accepted")
            )
            counts[key] = counts.get(key, 0) + 1
        return {
            "bulk_id": bulk_id,
            "created_at": meta["created_at"],
            "item_count": meta["item_count"],
            "counts": counts,
            "items": items,
        }

    # --- internals ------------------------------------------------------------------------------
    def _enqueue(self, notification_ids: list[str]) -> None:
        """Queue the ids for the bulk consumer, ``BULK_IDS_PER_MESSAGE`` per message, 10 messages per call."""
        if not notification_ids:
            return
        if not self.bulk_queue_url:
            raise ConfigurationError("BULK_QUEUE_URL is not set: the function's template entry must pass it")
        client = self.sqs()
        bodies = [
            json.dumps({"notification_ids": notification_ids[start : start + BULK_IDS_PER_MESSAGE]})
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

    @staticmethod
    def _item(
        notification_id: str, client_id: str, request: NotificationRequest, bulk_id: str | None = None
    ) -> dict[str, Any]:
        at = now_iso()
        item = {
            "notification_id": notification_id,
            "client_id": client_id,
            "order_reference": request.order_reference,
            "status": NotificationStatus.ACCEPTED.value,
            "created_at": at,
            "updated_at": at,
            "customer": request.customer.model_dump(mode="json"),
            "payment": request.payment.model_dump(mode="json") | {"status": "pending"},
            "receipt": request.receipt.model_dump(mode="json", exclude_none=True),
            "sms": request.sms.model_dump(mode="json"),
            "channels": {
                "email": {
                    "policy": request.delivery_policy.email.value,
                    "status": ChannelStatus.PENDING.value,
                },
                "sms": {"policy": request.delivery_policy.sms.value, "status": ChannelStatus.PENDING.value},
            },
        }
        if bulk_id:
            item["bulk_id"] = bulk_id
        return item

    @staticmethod
    def _accepted(notification: dict[str, Any]) -> dict[str, Any]:
        return {
            "notification_id": notification["notification_id"],
            "order_reference": notification["order_reference"],
            "status": notification["status"],
            "status_url": status_path(notification["notification_id"]),
            "execution_arn": notification.get("execution_arn"),
        }


def service_for(settings: ServiceSettings) -> NotificationService:
    """A service on ``settings``' table, state machine and bulk queue (boto3 clients built on first use)."""
    import boto3

    return NotificationService(
        store=NotificationStore(boto3.resource("dynamodb").Table(settings.notifications_table)),
        stepfunctions=lru_cache(maxsize=1)(lambda: boto3.client("stepfunctions")),
        sqs=lru_cache(maxsize=1)(lambda: boto3.client("sqs")),
        state_machine_arn=settings.state_machine_arn,
        bulk_queue_url=settings.bulk_queue_url,
    )


@lru_cache(maxsize=1)
def get_service() -> NotificationService:
    """The service for this container's configuration (validated on first use, naming a bad variable)."""
    return service_for(service_settings())
