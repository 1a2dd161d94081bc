"""Duplicate-send protection for channels without an idempotency key (SendGrid, Twilio, SES, SNS).

Every send is wrapped in a Powertools idempotency record in IDEMPOTENCY_TABLE, keyed by the message's
``idempotency_key`` within its kind (``email:<key>`` / ``sms:<key>``), shared by the primary channel
and its fallback and by every Lambda function:

* first send: an INPROGRESS record is written (conditional put), the provider is called, and the
  DeliveryReceipt is stored as the record's result;
* the same key again (a saga retry, a redelivered SQS message, the fallback after a lost response):
  the stored receipt comes back with ``deduplicated=True`` and no request is made;
* the same key while the first send is still running: IdempotencyConflict (``send_in_progress``);
* the same key for a different recipient/content: IdempotencyConflict (``send_key_reused``);
* the provider failed: the record is deleted, so a later retry (or the fallback channel) may send.

The key also travels with the message (SendGrid ``custom_args.tidings_send_key``, Twilio
StatusCallback query ``tidings_send_key``, SES tag) so provider webhooks correlate with it, which
makes the one remaining gap (a container killed after the provider accepted but before the record
was completed) detectable afterwards.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel

from tidings.errors import IdempotencyConflict, ProviderUnavailable
from tidings.observability import emit_metric, logger
from tidings.providers.models import DeliveryReceipt
from tidings.resilience.budget import current_lambda_context

Kind = Literal["email", "sms"]


def fingerprint(message: BaseModel) -> str:
    """A hash of what is sent (recipient and content), so a reused key with other content is caught."""
    data = message.model_dump(exclude={"idempotency_key", "custom_args", "status_callback_url"})
    return hashlib.sha256(repr(sorted(data.items())).encode()).hexdigest()


class SendDeduplicator:
    def __init__(self, table_name: str, *, ttl_seconds: int, dynamodb_client: Any | None = None) -> None:
        from aws_lambda_powertools.utilities.idempotency import (
            DynamoDBPersistenceLayer,
            IdempotencyConfig,
            idempotent_function,
        )
        from aws_lambda_powertools.utilities.idempotency.serialization.pydantic import PydanticSerializer

        self.config = IdempotencyConfig(
            event_key_jmespath="send_key",
            payload_validation_jmespath="fingerprint",
            raise_on_no_idempotency_key=True,
            expires_after_seconds=ttl_seconds,
            response_hook=self._replayed,
        )
        persistence = DynamoDBPersistenceLayer(table_name=table_name, boto3_client=dynamodb_client)

        # One decorated function for every channel: the key prefix (not the function or Lambda name)
        # scopes the records, so a fallback channel in another function sees the primary's sends.
        @idempotent_function(
            data_keyword_argument="send",
            persistence_store=persistence,
            config=self.config,
            output_serializer=PydanticSerializer(model=DeliveryReceipt),
            key_prefix="tidings-send",
        )
        def send_once(*, send: dict[str, str], deliver: Callable[[], DeliveryReceipt]) -> DeliveryReceipt:
            return deliver()

        self._send_once = send_once

    @staticmethod
    def _replayed(response: DeliveryReceipt, idempotent_data: Any) -> DeliveryReceipt:
        logger.info(
            "duplicate send suppressed", provider=response.provider, message_id=response.provider_message_id
        )
        emit_metric("DuplicateSendSuppressed", provider=response.provider)
        return response.model_copy(update={"deduplicated": True})

    def send(self, kind: Kind, message: Any, deliver: Callable[[], DeliveryReceipt]) -> DeliveryReceipt:
        from aws_lambda_powertools.utilities.idempotency.exceptions import (
            IdempotencyAlreadyInProgressError,
            IdempotencyItemAlreadyExistsError,
            IdempotencyPersistenceLayerError,
            IdempotencyValidationError,
        )

        context = current_lambda_context()
        if context is not None:
            # In-progress records then expire with the invocation instead of after the full TTL.
            self.config.register_lambda_context(context)
        data = {"send_key": f"{kind}:{message.idempotency_key}", "fingerprint": fingerprint(message)}
        try:
            receipt: DeliveryReceipt = self._send_once(send=data, deliver=deliver)
            return receipt
        except IdempotencyAlreadyInProgressError:
            raise IdempotencyConflict(
                "a send with this key is still in progress", provider="tidings", code="send_in_progress"
            ) from None
        except IdempotencyValidationError:
            raise IdempotencyConflict(
                "this send key was already used for another message",
                provider="tidings",
                code="send_key_reused",
            ) from None
        except (IdempotencyPersistenceLayerError, IdempotencyItemAlreadyExistsError) as exc:
            logger.error("duplicate-send store unavailable", error=type(exc).__name__)
            raise ProviderUnavailable(
                "duplicate-send store unavailable; not sending blind", provider="tidings", code="dedup_store"
            ) from None
