"""Settings of the notify API and the bulk starter, read from the environment once per container.

A missing or bad value fails the cold start with ``tidings.config.ConfigurationError`` naming the
variable, instead of a KeyError or a 500 on the first request that needs it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import lru_cache

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tidings.config import ConfigurationError


class ServiceSettings(BaseModel):
    """What ``NotificationService`` needs: where notifications live and which saga to start."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")

    notifications_table: str = Field(alias="NOTIFICATIONS_TABLE", min_length=1)
    state_machine_arn: str = Field(alias="STATE_MACHINE_ARN", pattern=r"^arn:aws[\w-]*:states:")
    #: Only the notify API queues bulk items; the bulk starter only reads them.
    bulk_queue_url: str | None = Field(None, alias="BULK_QUEUE_URL", min_length=1)


class ApiSettings(ServiceSettings):
    """The notify API: the service's settings, its idempotency table and its request limits."""

    idempotency_table: str = Field(alias="IDEMPOTENCY_TABLE", min_length=1)
    #: A retried request within this time gets the first request's answer (Powertools idempotency).
    idempotency_ttl_seconds: int = Field(24 * 3600, alias="IDEMPOTENCY_TTL_SECONDS", gt=0)
    max_request_bytes: int = Field(256 * 1024, alias="MAX_REQUEST_BYTES", gt=0)
    max_bulk_request_bytes: int = Field(5 * 1024 * 1024, alias="MAX_BULK_REQUEST_BYTES", gt=0)
    max_bulk_items: int = Field(5000, alias="MAX_BULK_ITEMS", gt=0)


def load[T: BaseModel](model: type[T], environ: Mapping[str, str] | None = None) -> T:
    """Validate the environment into ``model``; the error names every bad or missing variable."""
    source = os.environ if environ is None else environ
    aliases = {field.alias for field in model.model_fields.values()}
    # An empty value (a template parameter left blank) means "not set", not an invalid value.
    values = {key: value for key, value in source.items() if key in aliases and value != ""}
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        fields = model.model_fields
        problems = []
        for error in exc.errors():
            name = str(error["loc"][0]) if error["loc"] else "settings"
            variable = fields[name].alias if name in fields and fields[name].alias else name
            # The value itself is not repeated: a setting may be a URL with a credential in it.
            problems.append(f"{variable}: {error['msg']}")
        raise ConfigurationError("invalid configuration: " + "; ".join(problems)) from None


@lru_cache(maxsize=1)
def service_settings() -> ServiceSettings:
    return load(ServiceSettings)
