"""Template parameters for local runs that must walk retry paths in seconds, not minutes (a module of
its own, so the chaos command reads it without importing the whole local system)."""

from __future__ import annotations

#: The saga's retry policy (template parameters) for test and chaos runs: the production shape (a retry,
#: then the fallback; later tries of a parked SMS) at AWS's minimum interval of 1 s, so a retry path costs
#: seconds. Callers layer their own changes on top.
SHORT_RETRIES = {
    "ChargeRetryIntervalSeconds": "1",
    "ChargeRetryMaxAttempts": "1",
    "ChargeRetryBackoffRate": "1",
    "EmailRetryIntervalSeconds": "1",
    "EmailRetryMaxAttempts": "1",
    "EmailRetryBackoffRate": "1",
    "SmsRetryIntervalSeconds": "1",
    "SmsRetryMaxAttempts": "1",
    "SmsRetryBackoffRate": "1",
    "RefundRetryIntervalSeconds": "1",
    "RefundRetryMaxAttempts": "1",
    "RefundRetryBackoffRate": "1",
    # The 3-D Secure wait: far longer than any run waits, so a resumed payment never races it.
    "PaymentActionTimeoutSeconds": "600",
    "SmsOutageWaitTimeoutSeconds": "60",
    "SmsOutageDelaySeconds": "0",
    "RedeliveryMaxTries": "3",
    "RedeliveryBaseDelaySeconds": "1",
    "RedeliveryMaxDelaySeconds": "2",
    # A run sends a handful of notifications, not a 5-minute period of traffic: a provider's error rate
    # counts from 3 calls (the breaker opens after 5 failures and then spares the rest).
    "ProviderErrorRateMinimumCalls": "3",
}
