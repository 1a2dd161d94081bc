"""The composition roots of PublishStatusEvents and SendCallback: settings validated at cold start,
clients built on first use, once per container (no I/O at import)."""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tidings.outbound.publisher import StatusEventPublisher
    from tidings.outbound.sender import CallbackSender


@lru_cache(maxsize=1)
def get_publisher() -> StatusEventPublisher:
    import boto3

    from tidings.outbound.publisher import StatusEventPublisher
    from tidings.outbound.settings import publisher_settings

    settings = publisher_settings()
    return StatusEventPublisher(
        events=lru_cache(maxsize=1)(lambda: boto3.client("events")),
        sqs=lru_cache(maxsize=1)(lambda: boto3.client("sqs")),
        event_bus_name=settings.event_bus_name,
        callback_queue_url=settings.callback_queue_url,
        default_callback_url=settings.default_callback_url,
        source=settings.event_source,
    )


@lru_cache(maxsize=1)
def get_sender() -> CallbackSender:
    import boto3
    import httpx

    from tidings.outbound.sender import CallbackSender
    from tidings.outbound.settings import sender_settings
    from tidings.queues import SoonerRedelivery
    from tidings.secrets import CredentialStore

    settings = sender_settings()
    secrets = CredentialStore(
        ttl_seconds=settings.secret_cache_seconds, client=boto3.client("secretsmanager")
    )
    redelivery = SoonerRedelivery(boto3.client("sqs"), settings.callback_queue_url)
    http: Any = lru_cache(maxsize=1)(lambda: httpx.Client(follow_redirects=False))

    return CallbackSender(
        settings=settings,
        http=http,
        signing_secret=lambda: secrets.secret("callback", settings.callback_secret_arn),
        redeliver_after=redelivery.after,
    )
