"""ReconcileSweep: on a schedule, repair what no event will repair (stranded sagas, Stripe events never
delivered, deliveries never reported) and publish what was repaired."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from tidings.observability import logger, metrics, tracer
from tidings.saga.reconcile_sweep import get_sweeper
from tidings.saga.settings import reconcile_sweep_settings

# Cold start: a missing or bad variable fails here with a ConfigurationError that names it.
settings = reconcile_sweep_settings()


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    repairs = get_sweeper().sweep()
    counts = repairs.model_dump()
    for name, count in counts.items():
        metric = (
            "ReconcileChecksFailed"
            if name == "checks_failed"
            else "Reconciled" + name.title().replace("_", "")
        )
        metrics.add_metric(name=metric, unit=MetricUnit.Count, value=count)
    metrics.add_metric(name="ReconcileRepairs", unit=MetricUnit.Count, value=repairs.total)
    logger.info("reconciliation sweep done", **counts)
    return counts
