"""Settings of the saga's steps and of the later tries of parked messages, validated once per container.

A missing or bad value fails the cold start with ``tidings.config.ConfigurationError`` naming the
variable; the template sets each one (docs/saga.md lists the parameters behind them).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import Field

from tidings.config import TidingsSettings, load
from tidings.notifications.settings import StoreSettings


class StepSettings(StoreSettings):
    """What the saga's steps need beyond the providers' own settings (``tidings.config``)."""

    #: Twilio's delivery reports go here (``?notification_id=`` is added); unset, none are asked for.
    twilio_status_callback_url: str | None = Field(None, alias="TWILIO_STATUS_CALLBACK_URL")

    def status_callback_url(self, notification_id: str) -> str | None:
        base = self.twilio_status_callback_url
        return f"{base}?notification_id={notification_id}" if base else None


class RedeliverySettings(StepSettings):
    """RetryDelivery: how often and how far apart a parked message is tried, and where it ends."""

    max_tries: int = Field(alias="REDELIVERY_MAX_TRIES", ge=1)
    base_delay_seconds: int = Field(alias="REDELIVERY_BASE_DELAY_SECONDS", ge=0)
    #: SQS caps a visibility timeout at 12 hours.
    max_delay_seconds: int = Field(alias="REDELIVERY_MAX_DELAY_SECONDS", ge=0, le=43200)
    email_dead_letter_queue_url: str = Field(alias="EMAIL_DEAD_LETTER_QUEUE_URL", min_length=1)
    sms_dead_letter_queue_url: str = Field(alias="SMS_DEAD_LETTER_QUEUE_URL", min_length=1)


class ReconcileSettings(StepSettings):
    """ReconcilePayment: what an uncertain charge's saga does once Stripe has answered (docs/saga.md)."""

    #: Stripe has the charge: ``continue`` sends the receipt and the SMS; ``void`` refunds it and ends
    #: the notification ``compensated`` (the order is void after an outage).
    found_charge_policy: Literal["continue", "void"] = Field(alias="RECONCILE_FOUND_CHARGE_POLICY")
    #: Stripe has no record: ``not_taken`` ends ``payment_not_taken`` with no charge; ``charge_again``
    #: charges with the same idempotency key and goes on.
    missing_charge_policy: Literal["not_taken", "charge_again"] = Field(
        alias="RECONCILE_MISSING_CHARGE_POLICY"
    )


class ReconcileSweepSettings(StoreSettings):
    """ReconcileSweep: which saga to restart, where refetched events go, and when something is stuck."""

    state_machine_arn: str = Field(alias="STATE_MACHINE_ARN", pattern=r"^arn:aws[\w-]*:states:")
    webhook_queue_url: str = Field(alias="WEBHOOK_QUEUE_URL", min_length=1)
    #: A notification still ``accepted``, a channel still ``sent`` or a Stripe event still undelivered
    #: this long after it happened is repaired.
    stuck_after_minutes: float = Field(alias="RECONCILE_STUCK_AFTER_MINUTES", ge=0)
    #: How far back the sweep looks (Stripe keeps events 30 days and retries a webhook for 3).
    lookback_hours: float = Field(alias="RECONCILE_LOOKBACK_HOURS", gt=0, le=720)


class SweepSettings(TidingsSettings):
    """SweepSagas: which saga to watch and when a running notification counts as not final."""

    state_machine_arn: str = Field(alias="STATE_MACHINE_ARN", pattern=r"^arn:aws[\w-]*:states:")
    not_final_after_minutes: float = Field(alias="NOT_FINAL_AFTER_MINUTES", gt=0)

    @property
    def not_final_after_seconds(self) -> float:
        return self.not_final_after_minutes * 60


@lru_cache(maxsize=1)
def step_settings() -> StepSettings:
    return load(StepSettings)


@lru_cache(maxsize=1)
def redelivery_settings() -> RedeliverySettings:
    return load(RedeliverySettings)


@lru_cache(maxsize=1)
def reconcile_settings() -> ReconcileSettings:
    return load(ReconcileSettings)


@lru_cache(maxsize=1)
def reconcile_sweep_settings() -> ReconcileSweepSettings:
    return load(ReconcileSweepSettings)


@lru_cache(maxsize=1)
def sweep_settings() -> SweepSettings:
    return load(SweepSettings)
