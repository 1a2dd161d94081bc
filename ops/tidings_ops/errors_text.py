"""Every AWS failure an operator can meet, as one sentence saying what to set or check."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

from tidings_ops.target import OperatorError, no_region_message

if TYPE_CHECKING:
    from tidings_ops.target import Target


@contextlib.contextmanager
def aws_call(target: Target, what: str) -> Iterator[None]:
    """Turn botocore's errors into OperatorError; a CloudFormation "does not exist" passes through."""
    from botocore.exceptions import (
        ClientError,
        EndpointConnectionError,
        NoCredentialsError,
        NoRegionError,
        PartialCredentialsError,
        ReadTimeoutError,
        TokenRetrievalError,
    )

    try:
        yield
    except NoRegionError:
        raise OperatorError(no_region_message()) from None
    except (NoCredentialsError, PartialCredentialsError, TokenRetrievalError):
        raise OperatorError(
            "No usable AWS credentials: set AWS_PROFILE (or pass --profile), or AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY; for the local system start `make run` and pass --local."
        ) from None
    except (EndpointConnectionError, ReadTimeoutError) as exc:
        endpoint = getattr(exc, "kwargs", {}).get("endpoint_url") or target.endpoint_url or "AWS"
        hint = (
            "is `make run` still running?"
            if target.local
            else "check --region / AWS_DEFAULT_REGION and --endpoint-url / AWS_ENDPOINT_URL"
        )
        raise OperatorError(f"Cannot reach {endpoint} for {what}: {hint}") from None
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code, message = error.get("Code", "Error"), error.get("Message", "")
        if what.startswith("CloudFormation") and "does not exist" in message:
            raise
        if code in (
            "ExpiredToken",
            "ExpiredTokenException",
            "InvalidClientTokenId",
            "UnrecognizedClientException",
        ):
            raise OperatorError(
                f"AWS refused the credentials ({code}) for {what}: refresh them (aws sso login, or new keys)."
            ) from None
        if code in ("AccessDenied", "AccessDeniedException"):
            raise OperatorError(
                f"Your AWS identity may not call {what} on {target.where} ({code})."
            ) from None
        raise OperatorError(f"{what} failed on {target.where}: {code}: {message}") from None
