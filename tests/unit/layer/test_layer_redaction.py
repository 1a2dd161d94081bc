"""One redaction function masks personal data and secrets wherever they appear."""

import json
import logging

import pytest

from tidings.observability import logger, redact, register_secret

pytestmark = pytest.mark.unit


def test_email_keeps_first_letter_and_domain():
    assert redact("mail jane.doe@example.com now") == "mail j***@example.com now"


def test_phone_keeps_country_prefix_and_last_two_digits():
    assert redact("+447700900123") == "+44********23"
    # as it appears in a form-encoded body or URL
    assert "7700900" not in redact("To=%2B447700900123&Body=hi")


def test_one_mask_for_every_address_and_number_the_notify_api_accepts():
    from tidings.observability import mask_email, mask_phone

    # The shortest E.164 number (7 digits) and the longest (15) are both masked
    assert mask_phone("+1234567") == "+12***67"
    assert redact("call +1234567 now") == "call +12***67 now"
    assert mask_phone("+123456789012345") == "+12***********45"
    # Unicode and underscores in the local part, Unicode domains
    assert mask_email("jane_doe@example.com") == "j***@example.com"
    assert mask_email("élise@exemple.fr") == "é***@exemple.fr"
    assert redact("to ünal@bücher.de") == "to ü***@bücher.de"


def test_card_numbers_keep_only_the_last_four():
    assert redact("card 4242424242424242 ok") == "card ************4242 ok"
    assert redact("4000 0000 0000 0002") == "************0002"


def test_numbers_that_are_not_card_numbers_stay():
    # amounts, timestamps and ids that fail the Luhn check are not touched
    assert redact("amount 1234567890123") == "amount 1234567890123"
    assert redact({"amount": 5000}) == {"amount": 5000}


def test_secrets_by_shape_and_by_key():
    text = "Bearer sk_test_abcdef123 and SG.abc-def.ghi_jkl and whsec_xyz123"
    masked = redact(text)
    for secret in ("sk_test_abcdef123", "SG.abc-def.ghi_jkl", "whsec_xyz123", "abcdef123"):
        assert secret not in masked
    headers = {"Authorization": "Basic U0sxMjM6c2VjcmV0", "X-Api-Key": "k", "Content-Type": "json"}
    assert redact(headers) == {"Authorization": "***", "X-Api-Key": "***", "Content-Type": "json"}


def test_card_fields_in_stripe_bracket_notation_are_masked():
    form = {"payment_method_data[card][number]": "4242424242424242", "payment_method_data[card][cvc]": "123"}
    assert set(redact(form).values()) == {"***"}


def test_registered_credential_values_are_masked_anywhere():
    register_secret("plain-looking-credential-value")
    assert redact({"note": "token plain-looking-credential-value leaked"}) == {"note": "token *** leaked"}


def test_nested_structures_are_walked_and_not_mutated():
    original = {"to": [{"email": "jane.doe@example.com"}], "n": 1}
    masked = redact(original)
    assert masked == {"to": [{"email": "j***@example.com"}], "n": 1}
    assert original["to"][0]["email"] == "jane.doe@example.com"


def test_the_logger_redacts_fields_added_by_any_caller(log_lines):
    # Given a caller that forgets to redact
    logger.info("customer contacted", email="jane.doe@example.com", phone="+447700900123")
    # Then the shipped JSON line is masked anyway
    line = json.loads(log_lines.lines[-1])
    assert line["email"] == "j***@example.com"
    assert line["phone"] == "+44********23"
    assert line["message"] == "customer contacted"
    assert logging.getLogger(logger.name).level <= logging.INFO
