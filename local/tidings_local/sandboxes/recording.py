"""The log of every request a sandbox received, so tests can count calls and inspect what was sent."""

from __future__ import annotations

import itertools
import threading
from typing import Any

#: Headers whose value is a credential: only the scheme and the last four characters are kept.
_SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "x-api-key"})


def redact_authorization(value: str) -> str:
    """``Bearer sk_test_abcd1234`` -> ``Bearer ****1234`` (Stripe's own dashboard shows as much)."""
    scheme, _, credential = value.partition(" ")
    if not credential:
        scheme, credential = "", scheme
    tail = credential[-4:] if len(credential) > 8 else ""
    return f"{scheme} ****{tail}".strip()


def redact_headers(headers: dict[str, str]) -> dict[str, str]:
    return {
        name: redact_authorization(value) if name.lower() in _SECRET_HEADERS else value
        for name, value in headers.items()
    }


class Recorder:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: list[dict[str, Any]] = []
        self._ids = itertools.count(1)

    def add(self, record: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            record["seq"] = next(self._ids)
            self._records.append(record)
        return record

    def list(self, path_prefix: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            records = [dict(r) for r in self._records]
        if path_prefix:
            records = [r for r in records if r["path"].startswith(path_prefix)]
        return records

    def counts(self, path_prefix: str | None = None) -> dict[str, int]:
        """How many requests got each status ("none" while unanswered), without copying the records."""
        counts: dict[str, int] = {}
        with self._lock:
            for record in self._records:
                if not path_prefix or record["path"].startswith(path_prefix):
                    key = str(record["status"]).lower()
                    counts[key] = counts.get(key, 0) + 1
        return counts

    def clear(self) -> int:
        with self._lock:
            cleared = len(self._records)
            self._records = []
        return cleared
