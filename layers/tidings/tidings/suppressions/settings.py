"""Where the suppression list lives: the one setting its store reads, validated once per container."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field

from tidings.config import TidingsSettings, load


class SuppressionSettings(TidingsSettings):
    suppressions_table: str = Field(alias="SUPPRESSIONS_TABLE", min_length=1)


@lru_cache(maxsize=1)
def suppression_settings() -> SuppressionSettings:
    return load(SuppressionSettings)
