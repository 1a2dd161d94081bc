"""The receipt's headers on the SES fallback come from the standard library, and its HTML from its text.

A display name with quotes, commas or non-ASCII letters becomes one well-formed header value (quoted and
escaped, or RFC 2047-encoded); an internationalised domain goes as IDNA; a local part SES cannot
address is a typed, permanent refusal. The HTML part is the text with every character escaped.
"""

from email.headerregistry import Address
from email.policy import SMTP

import pytest

from tidings import errors
from tidings.providers.models import EmailMessage, text_as_html
from tidings.providers.ses import SesEmailChannel, mailbox
from tidings.resilience.caller import ResilientCaller

pytestmark = pytest.mark.unit


def parsed(value):
    """The one address a header value holds, as a mail client reads it back."""
    header = SMTP.header_factory("To", value)
    [address] = header.addresses
    return address


@pytest.mark.parametrize(
    "name",
    [
        'Ada "the Countess" Lovelace',
        "Lovelace, Ada",
        "Ada <admin@evil.example>",
        "Zoë Ødegård",
        "گریس هاپر",
        "Ada \\ Lovelace",
    ],
)
def test_a_display_name_is_quoted_or_encoded_and_reads_back_as_itself(name):
    value = mailbox("ada@example.com", name)
    assert value.isascii()
    assert "\n" not in value
    address = parsed(value)
    assert (address.display_name, address.addr_spec) == (name, "ada@example.com")


def test_a_non_ascii_name_is_rfc_2047_encoded():
    assert mailbox("ada@example.com", "Zoë").startswith("=?utf-8?")


def test_an_internationalised_domain_goes_as_idna():
    assert parsed(mailbox("ada@bücher.example")) == Address(addr_spec="ada@xn--bcher-kva.example")


def test_a_non_ascii_local_part_is_a_permanent_refusal_without_the_address():
    with pytest.raises(errors.InvalidRequest) as raised:
        mailbox("zoë@example.com", "Zoë")
    assert raised.value.retryable is False
    assert "zoë" not in str(raised.value.to_dict())


class RecordingSes:
    def __init__(self):
        self.calls = []

    def send_email(self, **request):
        self.calls.append(request)
        return {"MessageId": "ses-1"}


def test_the_ses_channel_sends_headers_built_by_the_standard_library():
    client = RecordingSes()
    channel = SesEmailChannel(
        client, ResilientCaller("ses"), "receipts@shop.example", from_name='Shop "Best", Ltd'
    )
    message = EmailMessage(
        to="ada@example.com",
        to_name="Lovelace, Ada",
        subject="Your receipt",
        text="Thanks <b>",
        html=text_as_html("Thanks <b>"),
        idempotency_key="receipt-1",
    )
    channel.deliver(message)
    [request] = client.calls
    assert parsed(request["FromEmailAddress"]).display_name == 'Shop "Best", Ltd'
    assert parsed(request["Destination"]["ToAddresses"][0]).display_name == "Lovelace, Ada"
    assert request["Content"]["Simple"]["Body"]["Html"]["Data"] == "<p>Thanks &lt;b&gt;</p>"


def test_the_html_part_is_the_text_escaped_with_its_line_breaks():
    assert text_as_html('<a href="x">1 & 2</a>\r\nline two') == (
        "<p>&lt;a href=&quot;x&quot;&gt;1 &amp; 2&lt;/a&gt;<br>\nline two</p>"
    )
