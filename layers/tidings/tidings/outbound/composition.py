"""The composition roots of PublishStatusEvents and SendCallback: settings validated at cold start,
clients built on first use, once per container (boto3 and httpx are not even imported before)."""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tidings.outbound.publisher import StatusEventPublisher
    from tidings.outbound.sender import CallbackSender
    from tidings.queues import SoonerRedelivery
    from tidings.secrets import CredentialStore


def _client(service: str) -> Any:
    import boto3

    return boto3.client(service)  # type: ignore[call-overload]  # any service name


@lru_cache(maxsize=1)
def get_publisher() -> StatusEventPublisher:
    from tidings.outbound.publisher import StatusEventPublisher
    from tidings.outbound.settings import publisher_settings

    settings = publisher_settings()
    return StatusEventPublisher(
        events=lru_cache(maxsize=1)(lambda: _client("events")),
        sqs=lru_cache(maxsize=1)(lambda: _client("sqs")),
        event_bus_name=settings.event_bus_name,
        callback_queue_url=settings.callback_queue_url,
        default_callback_url=settings.default_callback_url,
        source=settings.event_source,
    )


@lru_cache(maxsize=1)
def get_sender() -> CallbackSender:
    from tidings.outbound.sender import CallbackSender
    from tidings.outbound.settings import sender_settings

    settings = sender_settings()

    @lru_cache(maxsize=1)
    def secrets() -> CredentialStore:
        from tidings.secrets import CredentialStore

        return CredentialStore(ttl_seconds=settings.secret_cache_seconds, client=_client("secretsmanager"))

    @lru_cache(maxsize=1)
    def redelivery() -> SoonerRedelivery:
        from tidings.queues import SoonerRedelivery

        return SoonerRedelivery(_client("sqs"), settings.callback_queue_url)

    @lru_cache(maxsize=1)
    def http() -> Any:
        import httpx

        return httpx.Client(follow_redirects=False)

    return CallbackSender(
        settings=settings,
        http=http,
        signing_secret=lambda: secrets().secret("callback", settings.callback_secret_arn),
        redeliver_after=lambda receipt_handle, seconds: redelivery().after(receipt_handle, seconds),
    )
