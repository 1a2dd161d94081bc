"""Bringing a received SQS message back at a chosen time: the one place ``ChangeMessageVisibility`` is sent.

Two callers. The webhook processor: the webhook queue's visibility timeout is long on purpose (six
times the processor's timeout, so a slow attempt is never run twice at once, and long enough for a
running saga to end before a compensation is retried), but an event that failed only because another
container is applying the same event right now needs seconds, not minutes. RetryDelivery: a parked
message's next try comes after a growing delay instead of the queue's own timeout.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from tidings.observability import logger


class SoonerRedelivery:
    """Sets one received message's invisibility with ``ChangeMessageVisibility``."""

    def __init__(self, sqs_client: Any, queue_url: str) -> None:
        self._sqs = sqs_client
        self._queue_url = queue_url

    def after(self, receipt_handle: str, seconds: int) -> bool:
        """Make the message visible again in ``seconds``; False (and the queue's own timeout applies)
        if SQS refuses (an expired receipt handle) or cannot be reached. Never raises: the record fails
        either way, and its own error is the one worth reporting."""
        try:
            self._sqs.change_message_visibility(
                QueueUrl=self._queue_url, ReceiptHandle=receipt_handle, VisibilityTimeout=seconds
            )
        except (ClientError, BotoCoreError) as exc:
            code = exc.response["Error"].get("Code") if isinstance(exc, ClientError) else type(exc).__name__
            logger.warning("redelivery time not changed", error_code=code, seconds=seconds)
            return False
        return True


def queue_name_and_account(queue_arn: str) -> tuple[str, str]:
    """(name, account) of the queue an SQS event record came from (its ``eventSourceARN``)."""
    _arn, _aws, _sqs, _region, account, name = queue_arn.split(":", 5)
    return name, account
