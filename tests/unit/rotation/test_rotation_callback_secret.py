"""Rotating the callbacks' signing secret: a new Standard Webhooks key, the old one still signing until
its grace window ends, and the template's placeholder replaced on the first rotation."""

import json

import pytest
from support.rotation import value

from tidings.outbound import signing
from tidings.outbound.sender import secrets_in_use
from tidings.rotation.protocol import STEPS

pytestmark = pytest.mark.unit


@pytest.fixture
def callback_secret(aws):
    def create(value: dict) -> str:
        arn = aws["client"].create_secret(Name="tidings/test/callbacks", SecretString=json.dumps(value))[
            "ARN"
        ]
        aws["arns"]["callback"] = arn
        return arn

    return create


def current(aws) -> dict:
    return value(aws, "callback")


def rotate(rotation, aws, token):
    for step in STEPS:
        rotation.run(aws["arns"]["callback"], token, step)


def test_a_rotation_rolls_the_key_and_the_old_one_signs_through_the_grace_window(
    rotator, aws, clock, callback_secret, start_rotation
):
    old = signing.generate_secret()
    arn = callback_secret({"signing_secret": old})
    rotation = rotator(CALLBACK_SECRET_ARN=arn, ROTATION_WEBHOOK_GRACE_SECONDS="900")

    rotate(rotation, aws, start_rotation("callback"))

    rolled = current(aws)
    assert rolled["signing_secret"] != old
    assert rolled["previous_signing_secret"] == old
    assert rolled["previous_valid_until"] == int(clock.now) + 900
    # A callback signed now verifies for a shop holding either key; after the window, only the new one signs
    keys = secrets_in_use(rolled, now=clock.now + 10)
    headers = signing.sign(keys, "msg_r", int(clock.now), "{}")
    for key in (old, rolled["signing_secret"]):
        assert signing.verify("{}", headers, key, now=clock.now) == "msg_r"
    assert secrets_in_use(rolled, now=clock.now + 900) == [rolled["signing_secret"]]


def test_the_templates_placeholder_becomes_a_key_on_the_first_rotation(
    rotator, aws, callback_secret, start_rotation
):
    arn = callback_secret({"placeholder": "Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z"})
    rotate(rotator(CALLBACK_SECRET_ARN=arn), aws, start_rotation("callback"))

    made = current(aws)
    assert set(made) == {"signing_secret"}
    assert len(signing.secret_key(made["signing_secret"])) == 32
