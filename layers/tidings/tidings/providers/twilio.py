"""Twilio Messages (2010-04-01) over httpx: form-encoded, Basic auth with an API key SID and secret.

Twilio has no idempotency key: the send key rides in the StatusCallback URL's query
(``tidings_send_key``) so delivery webhooks correlate, and duplicates are stopped before the request
by :mod:`tidings.providers.dedup`. The models and the HTTP path (httpx) are imported where they are
used, so importing the channel costs less than importing Twilio's SDK (docs/benchmarks.md, section 2).
"""

from __future__ import annotations

import base64
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from tidings.errors import ProviderError
from tidings.providers._errors import error_for_status, json_body, retry_after_seconds

if TYPE_CHECKING:
    import httpx

    from tidings.providers.models import DeliveryReceipt, SmsMessage

PROVIDER = "twilio"
SEND_KEY_PARAM = "tidings_send_key"

# Twilio error codes that blame one request parameter (https://www.twilio.com/docs/api/errors).
FIELD_BY_CODE = {
    21211: "To",  # invalid 'To' phone number
    21214: "To",  # 'To' number cannot be reached
    21408: "To",  # permission to send to this region not enabled
    21610: "To",  # recipient unsubscribed (STOP)
    21612: "To",  # cannot route between these numbers
    21614: "To",  # not a mobile number
    21212: "From",  # invalid 'From' number
    21606: "From",  # 'From' number not capable of SMS
    21602: "Body",  # message body required
    21617: "Body",  # body exceeds 1600 characters
    21609: "StatusCallback",  # invalid StatusCallback URL
}


def twilio_error(response: httpx.Response) -> ProviderError:
    """Map ``{"code": 21211, "message": ..., "more_info": ..., "status": 400}`` (message redacted)."""
    body = json_body(response)
    body = body if isinstance(body, dict) else {}
    code = body.get("code")
    return error_for_status(
        PROVIDER,
        response.status_code,
        body.get("message") or f"twilio answered {response.status_code}",
        code=str(code) if code is not None else None,
        request_id=response.headers.get("Twilio-Request-Id"),
        field=FIELD_BY_CODE.get(code) if isinstance(code, int) else None,
        retry_after=retry_after_seconds(response.headers),
    )


def twilio_auth(credentials: Any) -> dict[str, str]:
    pair = f"{credentials.api_key_sid}:{credentials.api_key_secret}".encode()
    return {"Authorization": "Basic " + base64.b64encode(pair).decode("ascii")}


def with_send_key(url: str, send_key: str) -> str:
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != SEND_KEY_PARAM]
    query.append((SEND_KEY_PARAM, send_key))
    return urlunsplit(parts._replace(query=urlencode(query)))


class TwilioSmsChannel:
    name = PROVIDER

    def __init__(self, http: Any) -> None:
        self.http = http

    def deliver(self, message: SmsMessage) -> DeliveryReceipt:
        def path(credentials: Any) -> str:
            return f"/2010-04-01/Accounts/{credentials.account_sid}/Messages.json"

        def form(credentials: Any) -> dict[str, str]:
            fields = {"To": message.to, "From": credentials.from_number, "Body": message.body}
            if message.status_callback_url:
                fields["StatusCallback"] = with_send_key(message.status_callback_url, message.idempotency_key)
            return fields

        result = self.http.request("POST", path, endpoint="messages.create", form=form, success=(200, 201))
        from tidings.providers.models import DeliveryReceipt

        return DeliveryReceipt(
            provider=PROVIDER, provider_message_id=result.json()["sid"], attempts=result.attempts
        )

    def message_status(self, sid: str) -> tuple[str, str | None]:
        """Twilio's status of a message it accepted (``GET .../Messages/{Sid}.json``) and its error code."""
        if not re.fullmatch(r"(SM|MM)[0-9a-fA-F]{32}", sid):
            raise ValueError("not a Twilio message sid")

        def path(credentials: Any) -> str:
            return f"/2010-04-01/Accounts/{credentials.account_sid}/Messages/{sid}.json"

        body = self.http.request("GET", path, endpoint="messages.fetch").json()
        error_code = body.get("error_code")
        return str(body.get("status")), None if error_code is None else str(error_code)
