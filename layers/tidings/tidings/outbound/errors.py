"""Typed failures of the outbound path (one hierarchy with every other failure: ``ProviderError``).

``provider`` is ``callback`` for a shop's endpoint and ``eventbridge`` / ``sqs`` for the publisher's
own writes. Messages carry status codes and counts, never a URL (it may hold the shop's token) nor a
body.
"""

from __future__ import annotations

from tidings.errors import TransientProviderError


class CallbackNotAccepted(TransientProviderError):
    """The shop's endpoint answered with something other than 2xx; tried again on the schedule."""

    category = "callback_refused"


class CallbackUnreachable(TransientProviderError):
    """No answer from the shop's endpoint (connection refused or broken, timeout); tried again."""

    category = "callback_unreachable"


class StatusEventsNotPublished(TransientProviderError):
    """EventBridge or SQS refused some of a batch's entries; the stream batch is processed again
    (events keep their ids, so receivers deduplicate what had gone through)."""

    category = "unavailable"
