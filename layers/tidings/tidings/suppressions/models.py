"""What a suppression is: a channel, an address, why and from whom."""

from __future__ import annotations

import hashlib
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationInfo, field_validator

from tidings.notifications.models import E164, EmailAddress

SuppressionChannel = Literal["email", "sms"]
SuppressionSource = Literal["twilio", "sendgrid", "operator"]


class SuppressionReason(StrEnum):
    """Why an address is suppressed (each provider signal has its own)."""

    #: Twilio: the recipient texted STOP (or another opt-out keyword).
    OPT_OUT = "opt_out"
    #: Twilio refused a send with error 21610: the recipient had opted out at Twilio.
    TWILIO_21610 = "twilio_21610"
    UNSUBSCRIBE = "unsubscribe"
    GROUP_UNSUBSCRIBE = "group_unsubscribe"
    SPAM_REPORT = "spamreport"
    #: A hard bounce (SendGrid ``bounce`` with ``type: bounce``; a ``blocked`` one is not suppressed).
    HARD_BOUNCE = "bounce"
    #: Added by an operator.
    OPERATOR = "operator"


_EMAIL: TypeAdapter[str] = TypeAdapter(EmailAddress)


def normalise(channel: SuppressionChannel, address: str) -> str:
    """The form an address is kept and looked up in: e-mail lower-cased, phone numbers E.164 as given.

    Raises ``ValueError`` (without the address in the message) for an address that is not one.
    """
    address = address.strip()
    if channel == "email":
        try:
            return str(_EMAIL.validate_python(address)).lower()
        except ValueError:
            raise ValueError("not an e-mail address") from None
    if not E164.fullmatch(address):
        raise ValueError("not an E.164 phone number")
    return address


def suppression_id(channel: SuppressionChannel, address: str) -> str:
    """The entry's name: a hash of channel and normalised address (the table's key; the address itself
    is an attribute), so ids can travel in URLs and answers where the address must not."""
    digest = hashlib.sha256(f"{channel}:{normalise(channel, address)}".encode()).hexdigest()
    return f"sup_{digest[:40]}"


class SuppressionRequest(BaseModel):
    """``POST /suppressions``: an operator suppresses an address."""

    model_config = ConfigDict(extra="forbid")

    channel: SuppressionChannel
    address: str = Field(min_length=3, max_length=320, description="An e-mail address or an E.164 number")
    note: str | None = Field(default=None, max_length=200, pattern=r"^[^\x00-\x1f\x7f]*$")

    @field_validator("address")
    @classmethod
    def _address(cls, value: str, info: ValidationInfo) -> str:
        channel = info.data.get("channel")
        return normalise(channel, value) if channel in ("email", "sms") else value


class Suppression(BaseModel):
    """One entry of the suppression table (the address in full: the table is where it belongs)."""

    model_config = ConfigDict(extra="ignore")

    suppression_id: str
    channel: SuppressionChannel
    address: str
    reason: SuppressionReason
    source: SuppressionSource
    created_at: str
    #: The operator (JWT subject or local user) who added it; None for a provider signal.
    added_by: str | None = None
    note: str | None = None

    @classmethod
    def of(
        cls,
        channel: SuppressionChannel,
        address: str,
        reason: SuppressionReason,
        source: SuppressionSource,
        *,
        at: str,
        added_by: str | None = None,
        note: str | None = None,
    ) -> Suppression:
        return cls(
            suppression_id=suppression_id(channel, address),
            channel=channel,
            address=normalise(channel, address),
            reason=reason,
            source=source,
            created_at=at,
            added_by=added_by,
            note=note,
        )


class SuppressionView(BaseModel):
    """An entry as the API and the CLI show it: the address masked (the operator who needs the full one
    reads the table)."""

    suppression_id: str
    channel: SuppressionChannel
    address: str = Field(description="masked: j***@example.com, +44********89")
    reason: SuppressionReason
    source: SuppressionSource
    created_at: str
    added_by: str | None = None
    note: str | None = None

    @classmethod
    def of(cls, entry: Suppression) -> SuppressionView:
        from tidings.observability import mask_email, mask_phone

        masked = mask_email(entry.address) if entry.channel == "email" else mask_phone(entry.address)
        return cls.model_validate(entry.model_dump() | {"address": masked})


class SuppressionPage(BaseModel):
    items: list[SuppressionView]
    next_cursor: str | None = None


#: What a change was, for the audit log (``SuppressionAudit``).
SuppressionAction = Literal["added", "removed"]


class SuppressionChange(BaseModel):
    """One change of the list: what happened to which entry, by whom (no address: the id names it)."""

    action: SuppressionAction
    suppression_id: str
    channel: SuppressionChannel
    reason: SuppressionReason
    source: SuppressionSource
    actor: str | None = None
    at: str
