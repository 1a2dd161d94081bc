"""Notifications: the request model, the notification and its timeline, and the table that records them."""

from tidings.notifications.models import (
    FINAL_STATUSES,
    ChannelPolicy,
    ChannelRecord,
    ChannelStatus,
    Notification,
    NotificationRequest,
    NotificationStatus,
    PaymentRecord,
    TimelineEvent,
)
from tidings.notifications.store import NotificationNotFound, NotificationStore, get_store

__all__ = [
    "FINAL_STATUSES",
    "ChannelPolicy",
    "ChannelRecord",
    "ChannelStatus",
    "Notification",
    "NotificationNotFound",
    "NotificationRequest",
    "NotificationStatus",
    "NotificationStore",
    "PaymentRecord",
    "TimelineEvent",
    "get_store",
]
