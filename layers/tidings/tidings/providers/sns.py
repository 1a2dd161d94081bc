"""Amazon SNS ``Publish`` to a phone number: the SMS fallback behind the same interface as Twilio."""

from __future__ import annotations

from typing import Any

from tidings.providers._aws import call_aws
from tidings.providers.models import DeliveryReceipt, SmsMessage
from tidings.resilience.caller import ResilientCaller

PROVIDER = "sns"


class SnsSmsChannel:
    name = PROVIDER

    def __init__(self, client: Any, caller: ResilientCaller) -> None:
        self.client = client
        self.caller = caller

    def deliver(self, message: SmsMessage) -> DeliveryReceipt:
        def publish() -> dict[str, Any]:
            answer: dict[str, Any] = self.client.publish(
                PhoneNumber=message.to,
                Message=message.body,
                MessageAttributes={
                    # Receipts are transactional: higher delivery priority than promotional messages.
                    "AWS.SNS.SMS.SMSType": {"DataType": "String", "StringValue": "Transactional"},
                },
            )
            return answer

        response, attempts = call_aws(self.caller, PROVIDER, "publish", publish)
        return DeliveryReceipt(
            provider=PROVIDER, provider_message_id=response["MessageId"], attempts=attempts
        )
