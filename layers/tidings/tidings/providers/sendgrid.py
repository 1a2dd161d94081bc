"""SendGrid v3 ``mail/send`` over httpx: JSON body, 202 Accepted with ``X-Message-Id``.

SendGrid has no idempotency key, so the send key travels in ``custom_args`` (it comes back on every
event webhook) and duplicates are stopped before the request by :mod:`tidings.providers.dedup`.
The models and the HTTP path (httpx) are imported where they are used, so importing the channel costs
less than importing SendGrid's SDK (docs/benchmarks.md, section 2).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tidings.errors import InvalidRequest, ProviderError
from tidings.providers._errors import error_for_status, json_body, retry_after_seconds

if TYPE_CHECKING:
    import httpx

    from tidings.providers._http import HttpProvider
    from tidings.providers.models import DeliveryReceipt, EmailMessage

PROVIDER = "sendgrid"
SEND_KEY_ARG = "tidings_send_key"


def sendgrid_error(response: httpx.Response) -> ProviderError:
    """Map ``{"errors": [{"message", "field", "help"}]}``; 413 is a payload too large."""
    body = json_body(response)
    errors = body.get("errors") if isinstance(body, dict) else None
    first = errors[0] if isinstance(errors, list) and errors and isinstance(errors[0], dict) else {}
    message = first.get("message") or f"sendgrid answered {response.status_code}"
    if response.status_code == 413:
        return InvalidRequest(
            "message too large", provider=PROVIDER, status=413, code="payload_too_large", field="content"
        )
    return error_for_status(
        PROVIDER,
        response.status_code,
        message,
        code=str(response.status_code),
        field=first.get("field"),
        retry_after=retry_after_seconds(response.headers),
    )


def sendgrid_auth(credentials: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {credentials.api_key}"}


class SendGridEmailChannel:
    name = PROVIDER

    def __init__(self, http: HttpProvider, from_address: str, from_name: str | None = None) -> None:
        self.http = http
        self.from_address = from_address
        self.from_name = from_name

    def deliver(self, message: EmailMessage) -> DeliveryReceipt:
        to: dict[str, str] = {"email": message.to}
        if message.to_name:
            to["name"] = message.to_name
        sender: dict[str, str] = {"email": self.from_address}
        if self.from_name:
            sender["name"] = self.from_name
        personalization: dict[str, Any] = {
            "to": [to],
            "custom_args": {**message.custom_args, SEND_KEY_ARG: message.idempotency_key},
        }
        payload: dict[str, Any] = {"personalizations": [personalization], "from": sender}
        if message.sendgrid_template_id:
            # SendGrid renders its dynamic template (published from the same source) with the data.
            payload["template_id"] = message.sendgrid_template_id
            personalization["dynamic_template_data"] = message.template_data or {}
        else:
            content = [{"type": "text/plain", "value": message.text}]
            if message.html:
                content.append({"type": "text/html", "value": message.html})
            payload |= {"subject": message.subject, "content": content}
        result = self.http.request(
            "POST", "/v3/mail/send", endpoint="mail.send", json=payload, success=(202,)
        )
        message_id = result.response.headers.get("X-Message-Id")
        if not message_id:
            # 202 without an id is not SendGrid's documented answer; keep the send key as the handle.
            message_id = f"unknown:{message.idempotency_key}"
        from tidings.providers.models import DeliveryReceipt

        return DeliveryReceipt(provider=PROVIDER, provider_message_id=message_id, attempts=result.attempts)
