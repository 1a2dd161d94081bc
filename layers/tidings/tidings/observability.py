"""Logger, tracer and metrics built once per container, and the ONE redaction function.

Everything the layer logs goes through :func:`redact`, and the logger's formatter applies it again to
the whole structured record, so a field added by any caller is masked too. What is masked:

* e-mail addresses -> ``j***@example.com``
* phone numbers in E.164 -> ``+44********89``
* card numbers (13-19 digits passing the Luhn check) -> ``************4242``
* provider secrets by shape (``sk_live_...``, ``SG.x.y``, ``whsec_...``, ``Bearer``/``Basic`` values),
  every credential value loaded from Secrets Manager (:func:`register_secret`), and any value under a
  sensitive key (``authorization``, ``api_key``, ``password``, ``cvc``, ``number`` ...).
"""

from __future__ import annotations

import functools
import json
import re
import time
from collections.abc import Mapping
from typing import Any

import wrapt
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter
from aws_lambda_powertools.logging.types import LogRecord
from aws_lambda_powertools.metrics import MetricUnit

from tidings.config import observability_settings
from tidings.resilience.budget import bind_lambda_context

MASK = "***"

_SENSITIVE_KEYS = frozenset(
    {
        "authorization",
        "proxy_authorization",
        "api_key",
        "apikey",
        "x_api_key",
        "api_key_secret",
        "secret",
        "client_secret",
        "password",
        "auth_token",
        "token",
        "access_token",
        "refresh_token",
        "cookie",
        "set_cookie",
        "cvc",
        "cvv",
        "number",
        "card_number",
        "pan",
        "webhook_secret",
        "webhook_public_key",
        "stripe_signature",
        "x_twilio_signature",
        "x_twilio_email_event_webhook_signature",
    }
)
_SENSITIVE_SUFFIXES = ("_secret", "_token", "_password", "_api_key")

# Any address the notify API accepts (EmailStr: Unicode local parts and domains included).
_EMAIL = re.compile(r"([\w.%+-])[\w.%+-]*@([\w-]+(?:\.[\w-]+)*\.[^\W\d_]{2,})")
# E.164 numbers (+ then 7 to 15 digits, as the notify API accepts them), also percent-encoded (%2B)
# as they appear in form bodies and URLs.
_PHONE = re.compile(r"(\+|%2B)(\d{2})(\d{3,11})(\d{2})(?!\d)")
_PAN = re.compile(r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)")
_SECRET_SHAPES = (
    re.compile(r"\b((?:sk|rk|pk)_(?:live|test)_)[A-Za-z0-9_]+"),
    re.compile(r"\b(whsec_)[A-Za-z0-9_]+"),
    # PaymentIntent / SetupIntent client secrets: pi_123_secret_abc
    re.compile(r"\b([a-z]+_[A-Za-z0-9]+_secret_)[A-Za-z0-9]+"),
    re.compile(r"\b(SG\.)[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+"),
    re.compile(r"\b((?:Bearer|Basic) )[A-Za-z0-9._~+/=-]+"),
)
# Exact credential values loaded at run time (see tidings.secrets); masked wherever they appear.
_REGISTERED_SECRETS: set[str] = set()


def register_secret(value: str) -> None:
    """Mask this exact value in every later log line (credentials loaded from Secrets Manager)."""
    if isinstance(value, str) and len(value) >= 6:
        _REGISTERED_SECRETS.add(value)


def _luhn_ok(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        number = int(char)
        if index % 2 == 1:
            number *= 2
            if number > 9:
                number -= 9
        total += number
    return total % 10 == 0


def _mask_pan(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group(0))
    if not 13 <= len(digits) <= 19 or not _luhn_ok(digits):
        return match.group(0)
    return "*" * (len(digits) - 4) + digits[-4:]


def mask_email(value: str) -> str:
    """``jane.doe@example.com`` -> ``j***@example.com``: in log text and in the notify API's answers
    alike (the one e-mail mask)."""
    return _EMAIL.sub(lambda m: f"{m.group(1)}{MASK}@{m.group(2)}", value)


def mask_phone(value: str) -> str:
    """``+447700900189`` -> ``+44********89`` (country prefix and last two digits stay): in log text
    and in the notify API's answers alike (the one phone mask)."""
    return _PHONE.sub(lambda m: f"{m.group(1)}{m.group(2)}{'*' * len(m.group(3))}{m.group(4)}", value)


def mask_name(value: str) -> str:
    """``Ada Lovelace`` -> ``A*** L***``: each word's first letter, for the notify API's answers (a name
    is the customer's, and the shop that sent it has it already)."""
    return " ".join(f"{word[0]}{MASK}" for word in value.split()) or MASK


def _redact_text(value: str) -> str:
    for secret in _REGISTERED_SECRETS:
        if secret in value:
            value = value.replace(secret, MASK)
    for shape in _SECRET_SHAPES:
        value = shape.sub(lambda m: m.group(1) + MASK, value)
    value = _PAN.sub(_mask_pan, value)
    value = mask_email(value)
    return mask_phone(value)


def _is_sensitive_key(key: str) -> bool:
    normal = key.lower().replace("-", "_")
    # Stripe's bracket notation: card[number], payment_method_data[card][cvc].
    leaf = normal.rsplit("[", 1)[-1].rstrip("]")
    return normal in _SENSITIVE_KEYS or leaf in _SENSITIVE_KEYS or normal.endswith(_SENSITIVE_SUFFIXES)


def redact(value: Any) -> Any:
    """A copy of ``value`` (str, mapping, sequence, or anything else) safe to log, meter or queue."""
    if isinstance(value, str):
        return _redact_text(value)
    if isinstance(value, Mapping):
        return {
            key: (MASK if isinstance(key, str) and _is_sensitive_key(key) else redact(item))
            for key, item in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [redact(item) for item in value]
    if isinstance(value, bytes):
        return _redact_text(value.decode("utf-8", "replace"))
    return value


class RedactingFormatter(LambdaPowertoolsFormatter):
    """Powertools' JSON formatter with :func:`redact` applied to the whole record, every line."""

    def serialize(self, log: LogRecord) -> str:
        return super().serialize(redact(log))


class TidingsLogger(Logger):
    """Powertools' Logger; ``inject_lambda_context`` also hands the invocation to the provider layer, so
    every provider call's time budget fits the Lambda's remaining time without extra handler code."""

    def inject_lambda_context(self, lambda_handler: Any = None, *args: Any, **options: Any) -> Any:
        if lambda_handler is None:
            return functools.partial(self.inject_lambda_context, *args, **options)

        @functools.wraps(lambda_handler)
        def bound(event: Any, context: Any, *handler_args: Any, **handler_kwargs: Any) -> Any:
            bind_lambda_context(context)
            try:
                return lambda_handler(event, context, *handler_args, **handler_kwargs)
            finally:
                bind_lambda_context(None)

        return super().inject_lambda_context(bound, *args, **options)


_names = observability_settings()
logger = TidingsLogger(service=_names.service_name, logger_formatter=RedactingFormatter())
# Not Powertools' auto-patch, which imports at cold start every library X-Ray can trace (httpx,
# requests, sqlite3 ...): each library the layer calls is patched when it is first imported, so a
# function that never calls a provider never loads httpx.
tracer = Tracer(service=_names.service_name, auto_patch=False)
#: The module whose import patches a library: botocore once boto3 is whole (patching on
#: ``botocore.client`` would run inside boto3's own import, before botocore has its attributes).
TRACED_ON_IMPORT = {"boto3": "botocore", "httpx": "httpx"}


def _patch_on_import(module: str, library: str) -> None:
    wrapt.register_post_import_hook(lambda _module: tracer.patch([library]), module)


if not tracer.disabled:
    for _module, _library in TRACED_ON_IMPORT.items():
        _patch_on_import(_module, _library)
metrics = Metrics(namespace=_names.metrics_namespace)


# Dimension sets every provider metric is also published under, so an alarm can ask for one provider's
# error rate or p95 latency across its endpoints (alarms cannot SEARCH; percentiles cannot be summed).
_ROLLUPS = (("provider",), ("provider", "category"))


def emit_metric(name: str, value: float = 1, unit: MetricUnit = MetricUnit.Count, **dimensions: str) -> None:
    """Publish one EMF metric right away with its own dimensions (provider, endpoint, state ...).

    Printed as one EMF record rather than through the shared ``metrics`` object: each provider call needs
    its own provider/endpoint dimensions, which a flush-wide dimension set cannot express. Besides the
    full dimension set, a metric with a ``provider`` is published per provider (and per provider and
    ``category``), which is what the alarms and the dashboard read (docs/operations.md).
    """
    values = {"service": _names.service_name}
    values.update({key: str(dimension) for key, dimension in dimensions.items()})
    full = list(values)
    dimension_sets = [full]
    for rollup in _ROLLUPS:
        keys = ["service", *rollup]
        if keys != full and set(rollup) <= dimensions.keys():
            dimension_sets.append(keys)
    record = {
        "_aws": {
            "Timestamp": int(time.time() * 1000),
            "CloudWatchMetrics": [
                {
                    "Namespace": _names.metrics_namespace,
                    "Dimensions": dimension_sets,
                    "Metrics": [{"Name": name, "Unit": MetricUnit(unit).value}],
                }
            ],
        },
        **values,
        name: value,
    }
    print(json.dumps(record, separators=(",", ":")))
