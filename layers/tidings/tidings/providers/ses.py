"""Amazon SES v2 ``SendEmail``: the e-mail fallback behind the same channel interface as SendGrid.

The ``From`` and ``To`` headers are built by the standard library (``email.utils.formataddr``): a display
name is quoted and escaped when it holds specials, RFC 2047-encoded when it is not ASCII, and an address
is ASCII (an internationalised domain goes as IDNA). Nothing a client sends is pasted into a header.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from email.utils import formataddr
from typing import TYPE_CHECKING, Any, Protocol

from tidings.errors import InvalidRequest
from tidings.observability import logger
from tidings.providers._aws import call_aws
from tidings.providers.models import DeliveryReceipt, EmailMessage
from tidings.resilience.caller import ResilientCaller

if TYPE_CHECKING:
    from tidings.config import RateLimitSettings

PROVIDER = "ses"
_TAG_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


class SesEmailChannel:
    name = PROVIDER

    def __init__(self, client: Any, caller: ResilientCaller, from_address: str, from_name: str | None = None):
        self.client = client
        self.caller = caller
        self.from_address = mailbox(from_address, from_name)

    def deliver(self, message: EmailMessage) -> DeliveryReceipt:
        body: dict[str, Any] = {"Text": {"Data": message.text, "Charset": "UTF-8"}}
        if message.html:
            body["Html"] = {"Data": message.html, "Charset": "UTF-8"}
        to = mailbox(message.to, message.to_name)
        # SES tags allow [A-Za-z0-9_-] only; the tag lets SES events correlate with the send key.
        tags = [{"Name": "tidings_send_key", "Value": _TAG_UNSAFE.sub("_", message.idempotency_key)[:256]}]
        tags += [
            {"Name": _TAG_UNSAFE.sub("_", k)[:256], "Value": _TAG_UNSAFE.sub("_", v)[:256] or "_"}
            for k, v in message.custom_args.items()
        ]

        def send() -> dict[str, Any]:
            answer: dict[str, Any] = self.client.send_email(
                FromEmailAddress=self.from_address,
                Destination={"ToAddresses": [to]},
                Content={"Simple": {"Subject": {"Data": message.subject, "Charset": "UTF-8"}, "Body": body}},
                EmailTags=tags,
            )
            return answer

        response, attempts = call_aws(self.caller, PROVIDER, "send_email", send)
        return DeliveryReceipt(
            provider=PROVIDER, provider_message_id=response["MessageId"], attempts=attempts
        )


class SendQuotaReader(Protocol):
    """The one SES (v1) call the quota needs: ``GetSendQuota``."""

    def get_send_quota(self) -> Mapping[str, Any]: ...


class SesSendQuota:
    """SES's own sending rate (``GetSendQuota``: ``MaxSendRate`` messages per second) for its shared
    bucket, read at most once per ``ttl_seconds`` per container. When it cannot be read, the configured
    rate (SES_RATE_PER_SECOND) holds until the next try."""

    def __init__(
        self,
        client: Callable[[], SendQuotaReader],
        *,
        ttl_seconds: float,
        burst_seconds: float,
        wall: Callable[[], float],
    ) -> None:
        self._client = client
        self.ttl_seconds = ttl_seconds
        self.burst_seconds = burst_seconds
        self._wall = wall
        self._rate: float | None = None
        self._read_at = -math.inf

    def max_send_rate(self) -> float | None:
        now = self._wall()
        if now - self._read_at < self.ttl_seconds:
            return self._rate
        self._read_at = now
        try:
            quota = self._client().get_send_quota()
            rate = float(quota["MaxSendRate"])
        except Exception as exc:  # the configured rate is the fallback, never a failed send
            logger.warning("ses send quota unreadable, configured rate kept", error=type(exc).__name__)
            self._rate = None
            return None
        if self._rate != rate:
            logger.info(
                "ses send quota read", max_send_rate=rate, max_24_hour_send=quota.get("Max24HourSend")
            )
        self._rate = rate if rate > 0 else None
        return self._rate

    def limits(self, configured: RateLimitSettings) -> RateLimitSettings:
        rate = self.max_send_rate()
        if rate is None:
            return configured
        return configured.model_copy(
            update={"rate_per_second": rate, "burst": max(1.0, rate * self.burst_seconds)}
        )


def mailbox(address: str, name: str | None = None) -> str:
    """``address`` with its display name as one header value SES takes (RFC 5322, RFC 2047, IDNA)."""
    local, _, domain = address.rpartition("@")
    if not local or not local.isascii():
        # SES sends no SMTPUTF8: a non-ASCII local part cannot be addressed (the message is permanent).
        raise InvalidRequest(
            "address not deliverable by ses", provider=PROVIDER, field="to", code="non_ascii_local_part"
        )
    try:
        ascii_domain = domain.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise InvalidRequest("address not deliverable by ses", provider=PROVIDER, field="to") from exc
    return formataddr((name or "", f"{local}@{ascii_domain}"), charset="utf-8")
