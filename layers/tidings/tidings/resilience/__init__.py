"""The one resilience path every provider call takes.

``budget`` (a time budget per call that fits the Lambda timeout), ``retry`` (tenacity, per error
category), ``breaker`` (circuit breaker on a failure rate, DynamoDB-shared), ``rate_limit`` (token bucket,
DynamoDB-shared) and ``caller`` (:class:`~tidings.resilience.caller.ResilientCaller`, which strings
them together). Import the submodule you need: the package itself imports nothing heavy.
"""
