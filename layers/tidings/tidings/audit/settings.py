"""Where the audit log lives and how long it keeps a record, validated once per container."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field

from tidings.config import TidingsSettings, load


class AuditSettings(TidingsSettings):
    audit_table: str = Field(alias="AUDIT_TABLE", min_length=1)
    #: A record expires (DynamoDB TTL) this many days after it was written (template: AuditRetentionDays).
    retention_days: int = Field(400, alias="AUDIT_RETENTION_DAYS", gt=0)


@lru_cache(maxsize=1)
def audit_settings() -> AuditSettings:
    return load(AuditSettings)
