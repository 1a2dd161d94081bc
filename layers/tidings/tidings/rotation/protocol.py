"""The Secrets Manager rotation protocol: createSecret, setSecret, testSecret, finishSecret.

Secrets Manager starts a rotation by adding a version with id ``ClientRequestToken`` and the label
AWSPENDING (no value yet), then invokes the rotation function once per step. Every step may run again
(Secrets Manager retries a failed step, and a step can fail after doing part of its work), so each one
first checks whether its work is already done, as AWS's own rotation templates do:

* createSecret: if the pending version already has a value, nothing to do; otherwise ask the provider
  for a new credential and store it as AWSPENDING.
* setSecret: make the provider accept the pending credential (nothing for API keys the provider made).
* testSecret: use the pending credential against the provider; a failure leaves AWSCURRENT untouched.
* finishSecret: move AWSCURRENT to the pending version (the old one becomes AWSPREVIOUS), then retire
  the old credential at the provider. Retiring comes only after the move, so a credential is never
  deleted while it is still the current one.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal, Protocol

from tidings.observability import logger, register_secret

if TYPE_CHECKING:
    from tidings.audit import AuditLog

#: A secret name the audit log may name (Secrets Manager also allows ``+`` and ``@``: those are left out).
_SECRET_NAME = re.compile(r"[A-Za-z0-9._/=-]{1,200}")

Step = Literal["createSecret", "setSecret", "testSecret", "finishSecret"]
STEPS: tuple[Step, ...] = ("createSecret", "setSecret", "testSecret", "finishSecret")

CURRENT, PENDING, PREVIOUS = "AWSCURRENT", "AWSPENDING", "AWSPREVIOUS"

#: One version of a rotated secret, as Secrets Manager stores it: a flat JSON object of strings (keys,
#: ids, signing secrets), plus the int ``previous_valid_until`` of a webhook key roll. Not a model: a
#: rotation carries every field it does not know over unchanged, so it works on the stored object
#: itself (as the store works on DynamoDB items); what it reads is typed here and checked by each
#: provider's ``test`` step.
type SecretValue = dict[str, str | int]


class RotationStateError(Exception):
    """The secret is not in a state this step can act on (wrong token, rotation not started, or a
    secret this function does not rotate). Secrets Manager reports the rotation as failed; AWSCURRENT
    is untouched. Messages name the secret and step, never a value."""


class ProviderRotation(Protocol):
    """What differs per provider. Secrets are the parsed JSON objects stored in Secrets Manager."""

    provider: str

    def create(self, current: SecretValue, token: str) -> SecretValue:
        """The pending secret: a new credential made at the provider, other fields carried over."""

    def set(self, pending: SecretValue, current: SecretValue) -> None:
        """Make the provider accept the pending credential, if it does not already."""

    def test(self, pending: SecretValue) -> None:
        """Prove the pending credential works; raise a :mod:`tidings.errors` error if it does not."""

    def retire(self, previous: SecretValue, current: SecretValue) -> None:
        """Revoke what ``previous`` holds that ``current`` no longer does (idempotent)."""


class SecretRotator:
    """Runs one step for one secret. ``rotations`` maps each rotated secret (ARN or name) to its
    provider's rotation; ``client`` is a boto3 Secrets Manager client."""

    def __init__(
        self,
        client: Any,
        rotations: Mapping[str, ProviderRotation],
        *,
        clock: Callable[[], float] = time.time,
        audit: AuditLog | None = None,
    ) -> None:
        self.client = client
        self.rotations = dict(rotations)
        self.clock = clock
        self.audit = audit

    def run(self, secret_id: str, token: str, step: Step) -> None:
        """One rotation step, and its audit record (``rotation.<step>``, ok or failed, by secret name)."""
        name = secret_id.rsplit(":secret:", 1)[-1]
        try:
            skipped = self._run(secret_id, token, step)
        except Exception as exc:
            self._audit(step, name, "failed", {"error_type": type(exc).__name__})
            raise
        self._audit(step, name, "ok", {"skipped": skipped})

    def _audit(self, step: Step, name: str, outcome: str, details: dict[str, str | bool]) -> None:
        if self.audit is None:
            return
        from tidings.audit import AuditEntry

        target = name if _SECRET_NAME.fullmatch(name) else None
        self.audit.record_quietly(
            AuditEntry.model_validate(
                {
                    "subject": "system:rotation",
                    "actor": "system",
                    "action": f"rotation.{step}",
                    "outcome": outcome,
                    "target_kind": "secret" if target else None,
                    "target_id": target,
                    "details": details,
                }
            )
        )

    def _run(self, secret_id: str, token: str, step: Step) -> bool:
        """The step; True when it had nothing to do (the version is current already)."""
        metadata = self.client.describe_secret(SecretId=secret_id)
        rotation = self._rotation_for(metadata, step)
        stages = metadata.get("VersionIdsToStages", {})
        if token not in stages:
            raise RotationStateError(f"{step}: version {token} of {metadata['Name']} is not being rotated")
        if CURRENT in stages[token]:
            if step != "finishSecret":
                logger.info(
                    "rotation step skipped: version already current", step=step, secret_name=metadata["Name"]
                )
                return True
        elif PENDING not in stages[token]:
            raise RotationStateError(f"{step}: version {token} of {metadata['Name']} is not AWSPENDING")
        arn = metadata["ARN"]
        log = {"step": step, "secret_name": metadata["Name"], "provider": rotation.provider}
        logger.info("rotation step started", **log)
        if step == "createSecret":
            self._create(arn, token, rotation)
        elif step == "setSecret":
            rotation.set(self._value(arn, version_id=token, stage=PENDING), self._value(arn, stage=CURRENT))
        elif step == "testSecret":
            rotation.test(self._value(arn, version_id=token, stage=PENDING))
        else:
            self._finish(arn, token, stages, rotation)
        logger.info("rotation step finished", **log)
        return False

    # --- steps --------------------------------------------------------------------------------

    def _create(self, arn: str, token: str, rotation: ProviderRotation) -> None:
        current = self._value(arn, stage=CURRENT)
        try:
            self._value(arn, version_id=token, stage=PENDING)
        except self.client.exceptions.ResourceNotFoundException:
            pass
        else:
            logger.info("pending secret already created", provider=rotation.provider)
            return
        pending = rotation.create(current, token)
        self.client.put_secret_value(
            SecretId=arn, ClientRequestToken=token, SecretString=json.dumps(pending), VersionStages=[PENDING]
        )

    def _finish(
        self, arn: str, token: str, stages: Mapping[str, list[str]], rotation: ProviderRotation
    ) -> None:
        current_version = next((v for v, labels in stages.items() if CURRENT in labels), None)
        if current_version != token:
            self.client.update_secret_version_stage(
                SecretId=arn, VersionStage=CURRENT, MoveToVersionId=token, RemoveFromVersionId=current_version
            )
            logger.info("rotated secret is now current", provider=rotation.provider)
        # Runs again on a retried finishSecret, so a retire that failed once still happens.
        try:
            previous = self._value(arn, stage=PREVIOUS)
        except self.client.exceptions.ResourceNotFoundException:
            return
        rotation.retire(previous, self._value(arn, version_id=token))

    # --- helpers ------------------------------------------------------------------------------

    def _rotation_for(self, metadata: Mapping[str, Any], step: str) -> ProviderRotation:
        for key in (metadata.get("ARN"), metadata.get("Name")):
            if key in self.rotations:
                return self.rotations[key]
        raise RotationStateError(f"{step}: {metadata.get('Name')} is not a secret this function rotates")

    def _value(self, arn: str, *, stage: str | None = None, version_id: str | None = None) -> SecretValue:
        kwargs: dict[str, str] = {"SecretId": arn}
        if stage:
            kwargs["VersionStage"] = stage
        if version_id:
            kwargs["VersionId"] = version_id
        raw = self.client.get_secret_value(**kwargs)["SecretString"]
        value: SecretValue = json.loads(raw)
        for field in value.values():
            if isinstance(field, str):
                register_secret(field)
        return value
