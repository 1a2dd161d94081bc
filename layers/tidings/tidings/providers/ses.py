"""Amazon SES v2 ``SendEmail``: the e-mail fallback behind the same channel interface as SendGrid."""

from __future__ import annotations

import re
from typing import Any

from tidings.providers._aws import call_aws
from tidings.providers.models import DeliveryReceipt, EmailMessage
from tidings.resilience.caller import ResilientCaller

PROVIDER = "ses"
_TAG_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


class SesEmailChannel:
    name = PROVIDER

    def __init__(self, client: Any, caller: ResilientCaller, from_address: str, from_name: str | None = None):
        self.client = client
        self.caller = caller
        self.from_address = f'"{from_name}" <{from_address}>' if from_name else from_address

    def deliver(self, message: EmailMessage) -> DeliveryReceipt:
        body: dict[str, Any] = {"Text": {"Data": message.text, "Charset": "UTF-8"}}
        if message.html:
            body["Html"] = {"Data": message.html, "Charset": "UTF-8"}
        to = f'"{message.to_name}" <{message.to}>' if message.to_name else message.to
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
