"""Where the suppression list lives (the setting its store reads) and where its changes are audited,
validated once per container."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field

from tidings.config import TidingsSettings, load


class SuppressionSettings(TidingsSettings):
    suppressions_table: str = Field(alias="SUPPRESSIONS_TABLE", min_length=1)
    #: The audit log every change that took effect goes to (docs/audit.md); unset, changes are only
    #: counted and logged.
    audit_table: str | None = Field(None, alias="AUDIT_TABLE", min_length=1)
    audit_retention_days: int = Field(400, alias="AUDIT_RETENTION_DAYS", gt=0)


@lru_cache(maxsize=1)
def suppression_settings() -> SuppressionSettings:
    return load(SuppressionSettings)
