"""Settings of the notify API and the bulk starter, read from the environment once per container.

A missing or bad value fails the cold start with ``tidings.config.ConfigurationError`` naming the
variable, instead of a KeyError or a 500 on the first request that needs it.
"""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field

from tidings.config import TidingsSettings, load

__all__ = ["ApiSettings", "ServiceSettings", "load", "service_settings"]


class ServiceSettings(TidingsSettings):
    """What ``NotificationService`` needs: where notifications live and which saga to start."""

    notifications_table: str = Field(alias="NOTIFICATIONS_TABLE", min_length=1)
    state_machine_arn: str = Field(alias="STATE_MACHINE_ARN", pattern=r"^arn:aws[\w-]*:states:")
    #: Only the notify API queues bulk items; the bulk starter only reads them.
    bulk_queue_url: str | None = Field(None, alias="BULK_QUEUE_URL", min_length=1)
    #: Hosts a ``callback_url`` may reach over plain http (comma-separated; empty: https only).
    callback_http_allowed_hosts: str | None = Field(None, alias="CALLBACK_HTTP_ALLOWED_HOSTS")
    #: The suppression list: a required channel whose recipient is on it is refused (422). Unset, none.
    suppressions_table: str | None = Field(None, alias="SUPPRESSIONS_TABLE", min_length=1)


class ApiSettings(ServiceSettings):
    """The notify API: the service's settings, its idempotency table and its request limits."""

    idempotency_table: str = Field(alias="IDEMPOTENCY_TABLE", min_length=1)
    #: A retried request within this time gets the first request's answer (Powertools idempotency).
    idempotency_ttl_seconds: int = Field(24 * 3600, alias="IDEMPOTENCY_TTL_SECONDS", gt=0)
    max_request_bytes: int = Field(256 * 1024, alias="MAX_REQUEST_BYTES", gt=0)
    max_bulk_request_bytes: int = Field(5 * 1024 * 1024, alias="MAX_BULK_REQUEST_BYTES", gt=0)
    max_bulk_items: int = Field(5000, alias="MAX_BULK_ITEMS", gt=0)
    #: The per-client quota's shared buckets (the providers' rate-limit table); unset: one container's.
    rate_limit_table: str | None = Field(None, alias="RATE_LIMIT_TABLE", min_length=1)
    #: Notifications (single or bulk items) one JWT subject may start per second, and at once.
    client_sends_per_second: float = Field(10.0, alias="CLIENT_SENDS_PER_SECOND", gt=0)
    client_send_burst: int = Field(1000, alias="CLIENT_SEND_BURST", gt=0)
    #: The audit log: one record per call (tidings.audit).
    audit_table: str = Field(alias="AUDIT_TABLE", min_length=1)
    audit_retention_days: int = Field(400, alias="AUDIT_RETENTION_DAYS", gt=0)


@lru_cache(maxsize=1)
def service_settings() -> ServiceSettings:
    return load(ServiceSettings)
