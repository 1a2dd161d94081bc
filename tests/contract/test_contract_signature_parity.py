"""Twilio signatures: the verifier accepts what twilio-python's ``RequestValidator`` accepts (Twilio asks
receivers to validate with its libraries), and refuses on purpose only what docs/webhooks.md lists.
"""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit, urlunsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator

from tidings.webhooks.errors import WebhookSignatureInvalid
from tidings.webhooks.twilio import verify_twilio_signature

pytestmark = [pytest.mark.unit, pytest.mark.contract]

TOKEN = "twilio-auth-token-current"
OFFICIAL = RequestValidator(TOKEN)
URL = "https://hooks.example.com/webhooks/twilio?tidings_send_key=sms-1"


class MultiDict(dict):
    """Form parameters with repeated names, as a web framework hands them to twilio-python."""

    def getlist(self, name: str) -> list[str]:
        return self[name]


def official_signature(url: str, params: dict[str, list[str]]) -> str:
    return OFFICIAL.compute_signature(url, MultiDict(params))


def body_of(params: dict[str, list[str]]) -> bytes:
    return urlencode([(name, value) for name, values in params.items() for value in values]).encode()


def ours_accepts(url: str, params: dict[str, list[str]], signature: str) -> bool:
    try:
        verify_twilio_signature(url, body_of(params), signature, [TOKEN])
    except WebhookSignatureInvalid:
        return False
    return True


def with_netloc(url: str, netloc: str) -> str:
    return urlunsplit(urlsplit(url)._replace(netloc=netloc))


STATUS = {"MessageSid": ["SM1"], "MessageStatus": ["delivered"], "To": ["+447700900123"]}


def test_a_parameter_repeated_with_the_same_value_verifies_as_twilio_python_does():
    params = {**STATUS, "MediaUrl": ["https://m.example/1", "https://m.example/1"]}
    signature = official_signature(URL, params)
    assert OFFICIAL.validate(URL, MultiDict(params), signature)
    assert ours_accepts(URL, params, signature)


def test_repeated_parameters_with_different_values_each_count():
    params = {**STATUS, "MediaUrl": ["https://m.example/2", "https://m.example/1"]}
    signature = official_signature(URL, params)
    assert ours_accepts(URL, params, signature)
    # and dropping one of them breaks the signature, as it does for the library
    fewer = {**STATUS, "MediaUrl": ["https://m.example/1"]}
    assert not OFFICIAL.validate(URL, MultiDict(fewer), signature)
    assert not ours_accepts(URL, fewer, signature)


def test_a_non_default_port_in_the_called_url_verifies_a_signature_made_without_it():
    # Twilio signed the public URL; the request reached us through a proxy on :8443
    signature = official_signature(URL, STATUS)
    called = with_netloc(URL, "hooks.example.com:8443")
    assert OFFICIAL.validate(called, MultiDict(STATUS), signature)
    assert ours_accepts(called, STATUS, signature)


def test_another_non_default_port_is_still_another_url():
    signature = official_signature(with_netloc(URL, "hooks.example.com:8443"), STATUS)
    called = with_netloc(URL, "hooks.example.com:9443")
    assert not OFFICIAL.validate(called, MultiDict(STATUS), signature)
    assert not ours_accepts(called, STATUS, signature)


@pytest.mark.parametrize(
    ("why", "body", "header", "content_type", "reason"),
    [
        ("nothing to process in an empty body", b"", "sig", None, "empty_body"),
        ("no signature to check", b"A=1", None, None, "missing_header"),
        ("a JSON body bound by no hash", b'{"A": "1"}', "sig", "application/json", "body_hash_missing"),
    ],
)
def test_refused_on_purpose_where_the_library_has_no_such_rule(why, body, header, content_type, reason):
    with pytest.raises(WebhookSignatureInvalid) as caught:
        verify_twilio_signature(URL, body, header, [TOKEN], content_type=content_type)
    assert caught.value.reason == reason


NAMES = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]), min_size=1, max_size=8
)
VALUES = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]), max_size=12)
PORTS = st.sampled_from([None, 443, 80, 8443])


def netloc(port: int | None) -> str:
    return "hooks.example.com" + (f":{port}" if port else "")


@settings(max_examples=200, deadline=None)
@given(
    params=st.dictionaries(NAMES, st.lists(VALUES, min_size=1, max_size=3), min_size=1, max_size=6),
    repeat=st.booleans(),
    signed_port=PORTS,
    called_port=PORTS,
    scheme=st.sampled_from(["https", "http"]),
)
def test_the_verifier_and_twilio_python_agree_on_random_requests(
    params, repeat, signed_port, called_port, scheme
):
    if repeat:  # one value sent twice
        name = sorted(params)[0]
        params = {**params, name: [*params[name], params[name][0]]}
    base = urlunsplit((scheme, "", "/webhooks/twilio", "tidings_send_key=k", ""))
    signature = official_signature(with_netloc(base, netloc(signed_port)), params)
    called = with_netloc(base, netloc(called_port))
    assert ours_accepts(called, params, signature) == OFFICIAL.validate(called, MultiDict(params), signature)
