"""The reconciliation sweeper: on a schedule, repairs what no event will ever arrive to repair.

Three kinds of stragglers, each repaired through the path that would have repaired it in the first place,
so a repair the sweeper makes twice (or that the late event makes too) has one effect:

* a notification left ``accepted`` past the threshold with no execution recorded (the notify API's
  invocation died between storing it and starting its saga): its saga is started, named after the
  notification, and the execution recorded, so the next sweep leaves it alone (and a start that meets
  a running execution of that name is answered with it, as Step Functions does for the same name and
  input, or with ``ExecutionAlreadyExists`` for a closed one: no second saga either way);
* a Stripe event that never reached the webhook endpoint (``GET /v1/events?delivery_success=false``):
  it is put on the webhook queue, as the receiver does after verifying a signature, and the webhook
  processor applies it once (its dedupe record, and the timeline entry keyed by the event's identity);
  an event the notification's timeline already shows is not fetched again;
* a channel still ``sent`` past the threshold (its delivery report never came): Twilio is asked for the
  message (``GET .../Messages/{Sid}.json``) and a status it moved on to goes to the webhook queue as the
  status callback Twilio would have sent (same event identity, ``<sid>:<status>``); a message with no
  readable report (SendGrid, whose Email Activity API is a paid add-on, SES, SNS) is marked
  ``delivery_status: unknown`` once, with a timeline entry, and not looked at again.

Only counts leave this module (``SweepRepairs``): no contact details, no message content.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, Protocol

from pydantic import BaseModel

from tidings.errors import ProviderError
from tidings.notifications.models import ChannelStatus, Notification, NotificationStatus, TimelineEvent
from tidings.notifications.store import NotificationStore, iso
from tidings.observability import logger
from tidings.webhooks.models import WebhookEvent, parse_stripe_event, parse_twilio_callback

#: What ``delivery_status`` says of a message whose provider gives no delivery report to read.
UNKNOWN = "unknown"
STEP = "ReconcileSweep"


class SweepRepairs(BaseModel):
    """What one sweep repaired (the ``Reconciled*`` metrics)."""

    sagas_started: int = 0
    stripe_events_refetched: int = 0
    deliveries_updated: int = 0
    deliveries_unknown: int = 0
    #: Provider reads that failed (an outage, a message the provider no longer knows): tried next time.
    checks_failed: int = 0

    @property
    def total(self) -> int:
        return (
            self.sagas_started
            + self.stripe_events_refetched
            + self.deliveries_updated
            + self.deliveries_unknown
        )


class SagaStarter(Protocol):
    def start(self, notification: Notification) -> bool:
        """Start the notification's one execution; False if it exists already."""
        ...


class WebhookPublisher(Protocol):
    """``tidings.webhooks.receiver.WebhookQueue``."""

    def publish(self, events: Sequence[WebhookEvent]) -> None: ...


@dataclass
class ReconciliationSweeper:
    store: NotificationStore
    sagas: SagaStarter
    webhooks: WebhookPublisher
    #: Stripe events not delivered to every endpoint, created in ``[from, to]`` (Unix times).
    stripe_events: Callable[[int, int], Iterable[dict[str, Any]]]
    #: Twilio's status of a message (and its error code).
    sms_status: Callable[[str], tuple[str, str | None]]
    stuck_after: timedelta
    lookback: timedelta
    clock: Callable[[], datetime]

    def sweep(self) -> SweepRepairs:
        now = self.clock()
        since, cutoff = now - self.lookback, now - self.stuck_after
        repairs = SweepRepairs()
        events: list[WebhookEvent] = []
        for notification in self.store.unsettled(iso(since), iso(cutoff), ("email", "sms")):
            stranded = notification.status == NotificationStatus.ACCEPTED and not notification.execution_arn
            if stranded and self.sagas.start(notification):
                repairs.sagas_started += 1
            for name, channel in notification.channels.items():
                if channel.status != ChannelStatus.SENT or channel.delivery_status == UNKNOWN:
                    continue
                if channel.updated_at and channel.updated_at > iso(cutoff):
                    continue  # sent recently: its report may still come
                try:
                    report = self._delivery_report(notification, name, now)
                except ProviderError as error:
                    # Twilio down, or a message it no longer knows: the next sweep asks again.
                    logger.warning(
                        "delivery report not read",
                        notification_id=notification.notification_id,
                        channel=name,
                        error_type=type(error).__name__,
                    )
                    repairs.checks_failed += 1
                    continue
                if report is not None:
                    events.append(report)
                    repairs.deliveries_updated += 1
                elif report is None and not self._readable(notification, name):
                    self._mark_unknown(notification, name)
                    repairs.deliveries_unknown += 1
        try:
            stripe = self._undelivered_stripe_events(int(since.timestamp()), int(cutoff.timestamp()), now)
        except ProviderError as error:
            logger.warning("stripe events not read", error_type=type(error).__name__)
            repairs.checks_failed += 1
            stripe = []
        repairs.stripe_events_refetched = len(stripe)
        events += stripe
        if events:
            self.webhooks.publish(events)
        return repairs

    # --- delivery reports ------------------------------------------------------------------------------
    @staticmethod
    def _readable(notification: Notification, channel: str) -> bool:
        record = notification.channels[channel]
        return record.provider == "twilio" and bool(record.provider_message_id)

    def _delivery_report(
        self, notification: Notification, channel: str, now: datetime
    ) -> WebhookEvent | None:
        """Twilio's word on a message still ``sent`` here, as the status callback it would have sent;
        None when it says nothing new (or the message is not Twilio's)."""
        if not self._readable(notification, channel):
            return None
        sid = str(notification.channels[channel].provider_message_id)
        status, error_code = self.sms_status(sid)
        params = {"MessageSid": [sid], "MessageStatus": [status]}
        if error_code:
            params["ErrorCode"] = [error_code]
        event = parse_twilio_callback(
            params, {"notification_id": [notification.notification_id]}, received_at=now.timestamp()
        )
        if event is None or event.status in (None, "queued", "sent"):
            return None
        return event

    def _mark_unknown(self, notification: Notification, channel: str) -> None:
        record = notification.channels[channel]
        self.store.update_channel(notification.notification_id, channel, delivery_status=UNKNOWN)
        self.store.add_event(
            notification.notification_id,
            TimelineEvent(
                step=STEP,
                outcome="delivery_unknown",
                at=self.store.now(),
                provider=record.provider,
                details={"channel": channel, "reason": "no_delivery_report_to_read"},
            ),
            once_as=f"sweep-unknown-{channel}",
        )

    # --- Stripe events -------------------------------------------------------------------------------
    def _undelivered_stripe_events(
        self, created_from: int, created_to: int, now: datetime
    ) -> list[WebhookEvent]:
        found: list[WebhookEvent] = []
        for raw in self.stripe_events(created_from, created_to):
            event = parse_stripe_event(json.dumps(raw).encode(), received_at=now.timestamp())
            if event is None:
                continue  # a type Tidings does not act on
            notification_id = event.notification_id
            if not notification_id and event.provider_object_id:
                notification_id = self.store.notification_for_payment_intent(event.provider_object_id)
            if not notification_id or not self.store.exists(notification_id):
                continue  # not ours
            timeline = self.store.timeline(notification_id)
            if any(entry.details.get("event_id") == event.event_id for entry in timeline):
                continue  # applied already (by a late delivery, or an earlier sweep)
            found.append(event)
        return found


@dataclass
class ExecutionStarter:
    """Starts a notification's one execution (named by its id), as the notify API does."""

    store: NotificationStore
    stepfunctions: Callable[[], Any]
    state_machine_arn: str

    def start(self, notification: Notification) -> bool:
        from tidings.saga.result_paths import execution_input

        notification_id = notification.notification_id
        client = self.stepfunctions()
        started = True
        try:
            arn: str = client.start_execution(
                stateMachineArn=self.state_machine_arn,
                name=notification_id,
                input=json.dumps(execution_input(notification_id, notification.delivery_policy)),
            )["executionArn"]
        except client.exceptions.ExecutionAlreadyExists:
            arn = self.state_machine_arn.replace(":stateMachine:", ":execution:") + f":{notification_id}"
            started = False
        self.store.mark_started(notification_id, arn)
        if started:
            self.store.add_event(
                notification_id,
                TimelineEvent(step=STEP, outcome="saga_started", at=self.store.now(), details={}),
                once_as="sweep-saga-started",
            )
        return started


@lru_cache(maxsize=1)
def get_sweeper() -> ReconciliationSweeper:
    """ReconcileSweep's composition root: the table, Step Functions, the webhook queue and the Stripe
    and Twilio read APIs, each client built on first use, once per container."""
    import boto3

    from tidings import providers
    from tidings.notifications.store import get_store
    from tidings.saga.settings import reconcile_sweep_settings
    from tidings.webhooks.receiver import WebhookQueue

    settings = reconcile_sweep_settings()
    store = get_store()
    stepfunctions = lru_cache(maxsize=1)(lambda: boto3.client("stepfunctions"))
    factory = providers.get_provider_factory()
    twilio = lru_cache(maxsize=1)(factory.twilio_messages)

    class _LazyQueue:
        def publish(self, events: Sequence[WebhookEvent]) -> None:
            WebhookQueue(boto3.client("sqs"), settings.webhook_queue_url).publish(events)

    return ReconciliationSweeper(
        store=store,
        sagas=ExecutionStarter(store, stepfunctions, settings.state_machine_arn),
        webhooks=_LazyQueue(),
        stripe_events=lambda start, end: providers.get_payment_gateway().undelivered_events(start, end),
        sms_status=lambda sid: twilio().message_status(sid),
        stuck_after=timedelta(minutes=settings.stuck_after_minutes),
        lookback=timedelta(hours=settings.lookback_hours),
        clock=lambda: datetime.now(UTC),
    )
