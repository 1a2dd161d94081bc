"""PublishStatusEvents: the notification table's change stream to the shop's status events.

Each change of a notification gives its events (``tidings.outbound.events``): every one goes to the
stack's EventBridge bus, and those with a callback URL onto the callback queue. A batch that cannot be
written fails whole and the stream hands it over again (event ids are stable: receivers deduplicate).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from tidings.observability import logger, metrics, tracer
from tidings.outbound.composition import get_publisher

# Cold start: a missing or bad variable fails here with a ConfigurationError that names it.
publisher = get_publisher()


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, int]:
    published = publisher.publish_stream(event.get("Records") or [])
    if published.events:
        metrics.add_metric(name="StatusEventPublished", unit=MetricUnit.Count, value=published.events)
    return {"events": published.events, "callbacks": published.callbacks}
