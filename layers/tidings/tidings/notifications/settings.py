"""Where notifications live: the one setting the notification store reads, validated once per container."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field

from tidings.config import TidingsSettings, load


class StoreSettings(TidingsSettings):
    notifications_table: str = Field(alias="NOTIFICATIONS_TABLE", min_length=1)


@lru_cache(maxsize=1)
def store_settings() -> StoreSettings:
    return load(StoreSettings)
