"""The local callback receiver of `make run`: records what arrives, verifies it as a shop would, answers
with scripted failures, and `tidings local callbacks` lists it."""

import json
import time

import httpx
import pytest

from tidings.outbound import signing
from tidings_local.cli import main as tidings
from tidings_local.stack.callback_receiver import CallbackReceiver

pytestmark = pytest.mark.unit

SECRET = signing.generate_secret()
BODY = json.dumps(
    {
        "id": "msg_1",
        "type": "notification.finished",
        "timestamp": "t",
        "data": {"notification_id": "n1", "status": "delivered"},
    }
)


@pytest.fixture
def receiver():
    running = CallbackReceiver(secret=lambda: SECRET).start()
    yield running
    running.stop()


def post(url, secret=SECRET, msg_id="msg_1"):
    headers = signing.sign([secret], msg_id, int(time.time()), BODY)
    return httpx.post(url, content=BODY, headers=headers, timeout=5)


def test_a_signed_callback_is_recorded_as_verified(receiver):
    assert post(receiver.callback_url).status_code == 204
    [record] = receiver.callbacks()
    assert (record["webhook_id"], record["type"], record["verified"], record["delivery"]) == (
        "msg_1",
        "notification.finished",
        True,
        1,
    )


def test_a_callback_signed_with_another_key_is_recorded_as_not_verified(receiver):
    post(receiver.callback_url, secret=signing.generate_secret())
    [record] = receiver.callbacks()
    assert (record["verified"], record["rejection"]) == (False, "no_matching_signature")


def test_scripted_failures_per_event_and_for_the_next_calls(receiver):
    url = receiver.callback_url + "?fail=503&times=2"
    assert [post(url).status_code for _ in range(3)] == [503, 503, 204]
    receiver.fail_next(1, 500)
    assert post(receiver.callback_url, msg_id="msg_2").status_code == 500
    assert [r["delivery"] for r in receiver.callbacks()] == [1, 2, 3, 1]


def test_the_cli_lists_what_arrived(receiver, capsys):
    post(receiver.callback_url)
    assert tidings(["local", "callbacks", "--url", receiver.base_url]) == 0
    out = capsys.readouterr().out
    assert "msg_1" in out
    assert "1 callbacks, 1 distinct events" in out
    assert tidings(["local", "callbacks", "--url", receiver.base_url, "--fail", "2"]) == 0
    assert post(receiver.callback_url).status_code == 503
