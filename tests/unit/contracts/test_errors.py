"""The error hierarchy is the state machine's contract: names, categories and retryability."""

import pytest

from tidings import errors

pytestmark = pytest.mark.unit


def test_every_transient_error_is_retryable_and_every_other_is_not():
    # Given every public error type
    for name, cls in errors.ERROR_TYPES.items():
        # Then retryability follows the transient branch of the hierarchy, nothing else
        assert cls.retryable is issubclass(cls, errors.TransientProviderError), name


def test_transient_names_list_exactly_the_concrete_transient_classes():
    concrete_transient = {
        name
        for name, cls in errors.ERROR_TYPES.items()
        if issubclass(cls, errors.TransientProviderError) and cls is not errors.TransientProviderError
    }
    assert set(errors.TRANSIENT_ERROR_NAMES) == concrete_transient


@pytest.mark.parametrize(
    ("error", "extra_key", "extra_value"),
    [
        (
            errors.PaymentDeclined("card declined", provider="stripe", decline_code="insufficient_funds"),
            "decline_code",
            "insufficient_funds",
        ),
        (errors.RateLimited("slow down", provider="twilio", retry_after=2.0), "retry_after", 2.0),
        (errors.InvalidRequest("bad field", provider="sendgrid", field="from.email"), "field", "from.email"),
    ],
)
def test_to_dict_names_the_type_and_keeps_the_provider_detail(error, extra_key, extra_value):
    described = error.to_dict()
    assert described["error_type"] == type(error).__name__
    assert described["provider"] == error.provider
    assert described[extra_key] == extra_value
    assert described["retryable"] is type(error).retryable


def test_circuit_open_is_caught_by_handlers_of_provider_unavailable():
    # A Catch on ProviderUnavailable in code (not in ASL) must also see an open breaker.
    with pytest.raises(errors.ProviderUnavailable):
        raise errors.CircuitOpen("breaker open", provider="sendgrid")


def test_str_carries_status_code_and_request_id_for_operators():
    error = errors.ProviderUnavailable(
        "server error", provider="stripe", status=503, code="api_error", request_id="req_123"
    )
    assert str(error) == "stripe: server error status=503 code=api_error request_id=req_123"
