"""Notifications: the request model, the table that records them, and their statuses."""

from tidings.notifications.models import (
    FINAL_STATUSES,
    ChannelPolicy,
    ChannelStatus,
    NotificationRequest,
    NotificationStatus,
    TimelineEvent,
)
from tidings.notifications.store import NotificationNotFound, NotificationStore, get_store, now_iso

__all__ = [
    "FINAL_STATUSES",
    "ChannelPolicy",
    "ChannelStatus",
    "NotificationNotFound",
    "NotificationRequest",
    "NotificationStatus",
    "NotificationStore",
    "TimelineEvent",
    "get_store",
    "now_iso",
]
