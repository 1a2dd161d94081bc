"""Bringing a failed webhook record back sooner than the queue's visibility timeout.

The webhook queue's visibility timeout is long on purpose (six times the processor's timeout, so a slow
attempt is never run twice at once, and long enough for a running saga to end before a compensation is
retried). An event that failed only because another container is applying the same event right now
needs seconds, not minutes: the first copy has usually finished by then and the retry is acknowledged
as a duplicate.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from tidings.observability import logger


class SoonerRedelivery:
    """Shortens one received message's invisibility with ``ChangeMessageVisibility``."""

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
            logger.warning("webhook redelivery not brought forward", error_code=code)
            return False
        return True
