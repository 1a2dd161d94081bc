"""`tidings sandbox ...`: the commands drive a sandbox over HTTP, and `serve` runs all three as a process."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys

import httpx
import pytest

from tidings_local.cli import main
from tidings_local.sandboxes import credentials, start_all

pytestmark = pytest.mark.integration


def run(capsys, *argv: str) -> tuple[int, object]:
    code = main(["sandbox", *argv])
    out = capsys.readouterr().out
    return code, json.loads(out) if out.strip() else None


def test_fault_command_injects_a_fault_the_next_request_meets(capsys, stripe):
    code, fault = run(
        capsys,
        "fault",
        "stripe",
        "status",
        "--status",
        "503",
        "--count",
        "1",
        "--path",
        "/v1/",
        "--url",
        stripe.base_url,
    )
    assert code == 0
    assert fault["kind"] == "status"
    assert fault["status"] == 503
    response = httpx.get(
        f"{stripe.base_url}/v1/payment_intents/pi_x",
        headers={"Authorization": f"Bearer {credentials.STRIPE_API_KEY}"},
        trust_env=False,
    )
    assert response.status_code == 503


def test_invalid_fault_exits_non_zero_with_the_reason(capsys, stripe):
    code = main(["sandbox", "fault", "stripe", "status", "--url", stripe.base_url])
    assert code == 2
    assert "needs status" in capsys.readouterr().err


def test_requests_reset_rate_limit_and_webhook_commands(capsys, twilio):
    httpx.get(f"{twilio.base_url}/2010-04-01/Accounts/x/Messages.json", trust_env=False)
    assert run(capsys, "requests", "twilio", "--count", "--url", twilio.base_url) == (0, {"count": 1})
    _, records = run(capsys, "requests", "twilio", "--url", twilio.base_url)
    assert records[0]["path"] == "/2010-04-01/Accounts/x/Messages.json"

    _, limit = run(capsys, "rate-limit", "twilio", "5", "--burst", "10", "--url", twilio.base_url)
    assert limit == {"per_second": 5.0, "burst": 10}
    _, hook = run(
        capsys,
        "webhook",
        "twilio",
        "http://127.0.0.1:9/hook",
        "--retry-delays",
        "0.1,0.2",
        "--url",
        twilio.base_url,
    )
    assert hook == {"url": "http://127.0.0.1:9/hook", "retry_delays": [0.1, 0.2], "paused": False}

    run(capsys, "reset", "twilio", "--url", twilio.base_url)
    assert twilio.control.requests() == []
    assert twilio.control.faults() == []


def test_complete_action_command_finishes_a_3ds_payment(capsys, stripe, stripe_http):
    intent = stripe_http.post(
        "/v1/payment_intents",
        data={
            "amount": "1000",
            "currency": "usd",
            "payment_method": "pm_card_threeDSecure2Required",
            "confirm": "true",
        },
    ).json()
    code, completed = run(capsys, "complete-action", intent["id"], "--url", stripe.base_url)
    assert code == 0
    assert completed["status"] == "succeeded"


def test_start_all_starts_three_sandboxes_on_distinct_ports():
    with start_all() as group:
        assert set(group) == {"stripe", "sendgrid", "twilio"}
        assert len(set(group.base_urls.values())) == 3
        for name, sandbox in group.items():
            assert sandbox.control.health()["provider"] == name


def test_serve_runs_the_three_sandboxes_until_terminated():
    # Given `tidings sandbox serve` as its own process on free ports
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tidings_local.sandboxes",
            "serve",
            "--stripe-port",
            "0",
            "--sendgrid-port",
            "0",
            "--twilio-port",
            "0",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        urls = {}
        for line in process.stdout:
            if match := re.match(r"(stripe|sendgrid|twilio)\s+(http://\S+)", line):
                urls[match[1]] = match[2]
            if line.startswith("Ctrl-C"):
                break
        # Then each answers a real provider request
        stripe = httpx.post(
            f"{urls['stripe']}/v1/payment_intents",
            data={"amount": "1000", "currency": "usd", "payment_method": "pm_card_visa", "confirm": "true"},
            headers={"Authorization": f"Bearer {credentials.STRIPE_API_KEY}"},
            trust_env=False,
        )
        assert stripe.json()["status"] == "succeeded"
        sendgrid = httpx.post(f"{urls['sendgrid']}/v3/mail/send", json={}, trust_env=False)
        assert sendgrid.status_code == 401
        twilio = httpx.get(f"{urls['twilio']}/_sandbox/health", trust_env=False)
        assert twilio.json()["provider"] == "twilio"
        # And SIGTERM stops it cleanly
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close()
