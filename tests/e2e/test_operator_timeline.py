"""The customer's complaint, end to end: "I was charged but got no receipt".

Found by order reference through GET /notifications; its timeline names the failing provider call,
the error and the queue the receipt waits in; the operator CLI, pointed at the local system as at any
endpoint, replays it once the fault is gone and shows what changed."""

import json

import pytest
from support.e2e import order_body

from tidings_ops.cli import main

pytestmark = pytest.mark.e2e


def cli(system, capsys, *argv):
    """The operator CLI on the local system's endpoint, found by name as on any stack."""
    code = main(
        [
            *argv,
            "--stack-name",
            "tidings-local",
            "--endpoint-url",
            system.moto_url,
            "--region",
            "us-east-1",
            "--json",
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


@pytest.fixture
def fake_credentials(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")


def test_a_receipt_that_failed_for_good_is_found_explained_and_replayed(
    system, saga, capsys, fake_credentials
):
    # Given both e-mail providers down: the card is charged, the receipt ends on the dead-letter queue
    system.sandboxes["sendgrid"].control.inject_fault("outage", path_prefix="/v3/mail/send")
    system.outage["ses"].down = True
    reference = "order-complaint-1"
    result = saga.run(order_body(reference))
    assert result["status"] == "partially_delivered"
    notification_id = result["notification_id"]

    # When the operator looks it up by the order reference the customer quotes
    listed = saga.sdk.list_notifications(order_reference=reference)
    assert [item.notification_id for item in listed.items] == [notification_id]
    assert listed.items[0].channels["email"].status == "dead_lettered"

    # Then its timeline names the failing provider call, the error code and the queue it waits in
    timeline = saga.sdk.get_timeline(notification_id)
    entries = [entry.model_dump(mode="json", exclude_unset=True) for entry in timeline.entries]
    assert [entry["order"] for entry in entries] == list(range(1, len(entries) + 1))
    sendgrid = [e for e in entries if e["kind"] == "provider_call" and e["provider"] == "sendgrid"]
    assert sendgrid
    assert all(call["outcome"] == "failed" for call in sendgrid)
    assert (sendgrid[0]["method"], sendgrid[0]["path"]) == ("POST", "/v3/mail/send")
    assert sendgrid[0]["error_type"] == "ProviderUnavailable"
    assert sendgrid[0]["http_status"] == 503
    ses = [e for e in entries if e["kind"] == "provider_call" and e["provider"] == "ses"]
    assert ses
    assert ses[-1]["outcome"] == "failed"
    assert {"retry", "caught"} <= {e["kind"] for e in entries if e.get("state") == "SendReceiptEmail"}
    assert any(e["kind"] == "parked" and e["queue"] == "EmailDeadLetterQueue" for e in entries)
    assert entries[-1]["waiting_in"] == [
        {"channel": "email", "status": "dead_lettered", "queue": "EmailDeadLetterQueue"}
    ]
    assert "ada@example.com" not in json.dumps(timeline.model_dump(mode="json"))

    # And the operator CLI sees the same, on the local endpoint as on any stack
    assert (
        cli(system, capsys, "notifications", "list", "--order-reference", reference)["items"][0][
            "notification_id"
        ]
        == notification_id
    )
    groups = cli(system, capsys, "errors", "--since", "10m")
    assert any(g["provider"] == "sendgrid" and g["error_type"] == "ProviderUnavailable" for g in groups)

    # When the fault clears and the operator replays the notification
    system.sandboxes["sendgrid"].control.clear_faults()
    system.outage["ses"].down = False
    replay = cli(system, capsys, "replay", notification_id, "--wait", "90")

    # Then the difference shows: the receipt is sent now, by the provider that failed before
    assert replay["finished"] is True
    assert replay["outcome"]["before"]["status"] == "partially_delivered"
    assert replay["outcome"]["after"]["status"] == "delivered"
    assert replay["changed"]["status"] == ["partially_delivered", "delivered"]
    assert replay["changed"]["email"][0] == "dead_lettered"
    assert any(
        call.startswith("SendReceiptEmail sendgrid failed") for call in replay["provider_calls"]["before"]
    )
    assert any(
        call.startswith("SendReceiptEmail sendgrid sent") for call in replay["provider_calls"]["after"]
    )


def test_the_timeline_route_refuses_bad_input_without_a_5xx(system, saga):
    for path, params in (
        ("/notifications", {"status": "nonsense"}),
        ("/notifications", {"cursor": "%%%"}),
        ("/notifications", {"limit": "1000"}),
        ("/notifications/" + "x" * 100 + "/timeline", None),
        ("/notifications/unknown-id/timeline", None),
    ):
        response = saga.http.get(path, params=params, headers=saga.headers())
        assert 400 <= response.status_code < 500, (path, response.status_code, response.text)
        assert response.json()["code"]
        assert "Traceback" not in response.text
    assert saga.http.get("/notifications").status_code == 401
