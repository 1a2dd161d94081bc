"""Resuming a saga that waits on a task token: the one place Step Functions callbacks are sent.

Two callers: the Stripe webhook (3-D Secure finished or failed) and RetryDelivery (a ``required`` SMS
sent, or given up, from the outage queue). A token that is already spent (used, timed out, or its
execution ended) leaves nothing to resume: that is reported as False, never raised, so a late or
repeated callback cannot fail the message that carries it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from botocore.exceptions import ClientError

from tidings.observability import logger

#: The token was used already, the wait timed out, or the execution ended: nothing left to resume.
_SPENT_TOKEN_ERRORS = frozenset({"TaskTimedOut", "InvalidToken", "TaskDoesNotExist"})


class TaskTokenResumer:
    """Implements ``webhooks.processor.SagaResumer``; ``stepfunctions`` builds the boto3 client once,
    on the first callback (a container that never resumes a saga never builds it)."""

    def __init__(self, stepfunctions: Callable[[], Any]) -> None:
        self._stepfunctions = stepfunctions

    def resume(self, task_token: str, output: Mapping[str, object]) -> bool:
        """The waiting task succeeds with ``output``; False if the token was spent."""
        return self._call("send_task_success", taskToken=task_token, output=json.dumps(output))

    def fail(self, task_token: str, error: str, cause: Mapping[str, object]) -> bool:
        """The waiting task fails with ``error`` (a class name its Catch matches); False if spent."""
        return self._call(
            "send_task_failure",
            taskToken=task_token,
            error=error,
            cause=json.dumps(cause, sort_keys=True),
        )

    def _call(self, operation: str, **kwargs: Any) -> bool:
        try:
            getattr(self._stepfunctions(), operation)(**kwargs)
        except ClientError as exc:
            code = exc.response["Error"]["Code"]
            if code in _SPENT_TOKEN_ERRORS:
                logger.info("task token already spent", operation=operation, error_code=code)
                return False
            raise
        return True
