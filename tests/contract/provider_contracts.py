"""Each provider's contract, and one entry point that checks a recorded exchange against the right one."""

from __future__ import annotations

import json
from typing import Any

import httpx
import stripe_contract
from openapi_contract import ProviderContract
from twilio.base.version import Version
from twilio.http.response import Response as TwilioResponse

TWILIO = ProviderContract(
    "twilio", "twilio_api_v2010.messages_keys.json", "twilio_api_v2010.accounts_fetch.json"
)
SENDGRID = ProviderContract(
    "sendgrid",
    "sendgrid_mail_v3.send.json",
    "sendgrid_api_keys_v3.json",
    "sendgrid_scopes_v3.json",
    "sendgrid_templates_v3.json",
    error_schema="#/components/schemas/ErrorResponse",
)

#: Twilio's error body (https://www.twilio.com/docs/usage/twilios-response#response-formats-exceptions);
#: its OpenAPI description lists only the success answers.
TWILIO_ERROR_FIELDS = {"code", "message", "more_info", "status"}
TWILIO_ERROR_OPTIONAL = {"detail", "details"}


def provider_of(request: httpx.Request) -> str:
    path = request.url.path
    if path.startswith("/v1/"):
        return "stripe"
    if path.startswith("/v3/"):
        return "sendgrid"
    if path.startswith("/2010-04-01/"):
        return "twilio"
    raise AssertionError(f"not a provider request: {request.method} {path}")


def operation_name(request: httpx.Request) -> str:
    provider = provider_of(request)
    if provider == "stripe":
        found = stripe_contract.route(request.method, request.url.path)
        return f"stripe {found[0]}" if found else f"stripe {request.method} {request.url.path}"
    contract = TWILIO if provider == "twilio" else SENDGRID
    op = contract.operation(request.method, request.url.path)
    return f"{provider} {op.name}" if op else f"{provider} {request.method} {request.url.path}"


def request_problems(request: httpx.Request) -> list[str]:
    provider = provider_of(request)
    if provider == "stripe":
        return stripe_contract.request_problems(request)
    return (TWILIO if provider == "twilio" else SENDGRID).request_problems(request)


def twilio_error_problems(response: httpx.Response) -> list[str]:
    where = f"twilio {response.status_code} error"
    try:
        body: Any = response.json()
    except ValueError:
        return [f"{where}: body is not JSON"]
    if not isinstance(body, dict):
        return [f"{where}: body is not an object"]
    problems = [f"{where}: field {k!r} missing" for k in sorted(TWILIO_ERROR_FIELDS - set(body))]
    problems += [
        f"{where}: field {k!r} is not part of Twilio's error body"
        for k in sorted(set(body) - TWILIO_ERROR_FIELDS - TWILIO_ERROR_OPTIONAL)
    ]
    if body.get("status") != response.status_code:
        problems.append(f"{where}: status {body.get('status')!r} is not the HTTP status")
    if not isinstance(body.get("code"), int):
        problems.append(f"{where}: code must be an integer")
    # twilio-python reads the same body: its exception must carry the code and the message.
    parsed = Version.exception(
        response.request.method,
        str(response.request.url),
        TwilioResponse(response.status_code, response.text),
        "x",
    )
    if parsed.code != body.get("code") or str(body.get("message")) not in parsed.msg:
        problems.append(f"{where}: twilio-python reads code {parsed.code!r}, message {parsed.msg!r}")
    return problems


def response_problems(response: httpx.Response) -> list[str]:
    provider = provider_of(response.request)
    if provider == "stripe":
        return stripe_contract.response_problems(response)
    contract = TWILIO if provider == "twilio" else SENDGRID
    problems = contract.response_problems(response)
    if provider == "twilio" and response.status_code >= 400:
        problems += twilio_error_problems(response)
    return problems


def exchange_problems(responses: list[httpx.Response]) -> dict[str, list[str]]:
    """Every recorded exchange's problems, by "<operation> <status>" (only those with problems)."""
    found: dict[str, list[str]] = {}
    for response in responses:
        problems = request_problems(response.request) + response_problems(response)
        if problems:
            found.setdefault(f"{operation_name(response.request)} {response.status_code}", []).extend(
                problems
            )
    return found


def pretty(problems: dict[str, list[str]]) -> str:
    return json.dumps(problems, indent=2)
