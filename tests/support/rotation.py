"""Reading a secret's versions in the rotation tests."""

from __future__ import annotations

import json


def value(aws, provider: str, **selector: str) -> dict:
    """A version's value; AWSCURRENT unless told (moto's default without a label does not follow a
    moved AWSCURRENT label, AWS's does)."""
    if "VersionId" not in selector:
        selector.setdefault("VersionStage", "AWSCURRENT")
    raw = aws["client"].get_secret_value(SecretId=aws["arns"][provider], **selector)["SecretString"]
    return json.loads(raw)


def stages(aws, provider: str) -> dict[str, list[str]]:
    return aws["client"].describe_secret(SecretId=aws["arns"][provider])["VersionIdsToStages"]
