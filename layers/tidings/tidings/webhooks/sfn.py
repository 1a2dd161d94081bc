"""Resuming the saga that waits for 3-D Secure: Step Functions task-token callbacks."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

#: The token was used already, the wait timed out, or the execution ended: nothing left to resume.
_SPENT_TOKEN_ERRORS = frozenset({"TaskTimedOut", "InvalidToken", "TaskDoesNotExist"})


class StepFunctionsSagaResumer:
    """Implements ``processor.SagaResumer`` with a boto3 ``stepfunctions`` client."""

    def __init__(self, sfn_client: Any) -> None:
        self._sfn = sfn_client

    def resume(self, task_token: str, output: Mapping[str, object]) -> bool:
        return self._call(self._sfn.send_task_success, taskToken=task_token, output=json.dumps(output))

    def fail(self, task_token: str, error: str, cause: Mapping[str, object]) -> bool:
        return self._call(
            self._sfn.send_task_failure,
            taskToken=task_token,
            error=error,
            cause=json.dumps(cause, sort_keys=True),
        )

    @staticmethod
    def _call(method: Any, **kwargs: Any) -> bool:
        try:
            method(**kwargs)
        except ClientError as exc:
            if exc.response["Error"]["Code"] in _SPENT_TOKEN_ERRORS:
                return False
            raise
        return True
