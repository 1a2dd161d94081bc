"""Notifications that are not final in time: the running sagas older than a limit, as a metric.

A saga that is waiting, retrying or stuck never reaches RecordOutcome, so no metric of its own says so.
Every few minutes the sweeper lists the state machine's RUNNING executions (one per notification, named
by its id) and publishes how many started longer ago than ``not_final_after_seconds`` and the age of the
oldest one; the ``SagasNotFinal`` alarm reads the first (docs/operations.md). Only counts and ages leave
this module: no execution input, no notification content.

``SagaSweeper(settings).run()`` is all ``functions/sweep_sagas`` calls (its Step Functions client is built
on the first sweep, once per container).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.metrics import MetricUnit
from pydantic import BaseModel, ConfigDict

from tidings.observability import emit_metric, logger

if TYPE_CHECKING:
    from tidings.saga.settings import SweepSettings


class SweepResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    running: int
    not_final: int
    oldest_age_seconds: float
    #: Ids of the executions over the limit (at most ``SAMPLE`` of them), for the operator's log line.
    sample: tuple[str, ...]


SAMPLE = 20


def running_executions(stepfunctions: Any, state_machine_arn: str) -> Iterable[dict[str, Any]]:
    paginator = stepfunctions.get_paginator("list_executions")
    for page in paginator.paginate(stateMachineArn=state_machine_arn, statusFilter="RUNNING"):
        yield from page.get("executions", [])


def sweep(executions: Iterable[dict[str, Any]], now: datetime, not_final_after_seconds: float) -> SweepResult:
    running = not_final = 0
    oldest = 0.0
    sample: list[str] = []
    for execution in executions:
        running += 1
        age = max(0.0, (now - execution["startDate"]).total_seconds())
        oldest = max(oldest, age)
        if age > not_final_after_seconds:
            not_final += 1
            if len(sample) < SAMPLE:
                sample.append(str(execution["name"]))
    return SweepResult(
        running=running, not_final=not_final, oldest_age_seconds=round(oldest, 1), sample=tuple(sample)
    )


def publish(result: SweepResult) -> None:
    emit_metric("SagasRunning", value=result.running)
    emit_metric("SagasNotFinal", value=result.not_final)
    emit_metric("OldestRunningSagaAge", value=result.oldest_age_seconds, unit=MetricUnit.Seconds)


def _now() -> datetime:
    return datetime.now(UTC)


class SagaSweeper:
    """SweepSagas for one container: list the running sagas, count the late ones, publish and log."""

    def __init__(
        self,
        settings: SweepSettings,
        *,
        stepfunctions: Callable[[], Any] | None = None,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self.settings = settings
        self._stepfunctions = stepfunctions
        self.clock = clock

    @cached_property
    def stepfunctions(self) -> Any:
        if self._stepfunctions is not None:
            return self._stepfunctions()
        import boto3

        return boto3.client("stepfunctions")

    def run(self) -> SweepResult:
        executions = running_executions(self.stepfunctions, self.settings.state_machine_arn)
        result = sweep(executions, self.clock(), self.settings.not_final_after_seconds)
        publish(result)
        if result.not_final:
            logger.warning(
                "notifications not final in time",
                not_final=result.not_final,
                oldest_age_seconds=result.oldest_age_seconds,
                notification_ids=list(result.sample),
            )
        return result
