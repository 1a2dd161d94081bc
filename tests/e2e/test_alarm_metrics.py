"""A provider fault makes its alarms' metrics cross their thresholds, and they clear after the fault does.

The functions' EMF lines go into moto's CloudWatch (as CloudWatch Logs does on AWS); each alarm is then
read back from moto exactly as the template deployed it (metrics, statistic, expression, threshold) and
computed over the fault's window and over the window after it, each standing for one period.
"""

from datetime import UTC, datetime

import pytest
from support.e2e import order_body

from tidings_local.alarms import alarm_value, breaching, publish_emf

pytestmark = pytest.mark.e2e


def _alarm(system, logical_id):
    cloudwatch = system.boto3_client("cloudwatch")
    (alarm,) = cloudwatch.describe_alarms(AlarmNames=[system.physical_id(logical_id)])["MetricAlarms"]
    return alarm


def test_a_sendgrid_outage_trips_its_error_rate_and_breaker_alarms_which_clear_after(
    system, saga, function_logs
):
    cloudwatch = system.boto3_client("cloudwatch")
    error_rate = _alarm(system, "SendGridErrorRateAlarm")
    opened = _alarm(system, "SendGridCircuitOpenedAlarm")
    ses_error_rate = _alarm(system, "SesErrorRateAlarm")
    first_line = len(function_logs)

    # Given SendGrid answers nothing but errors
    fault_start = datetime.now(UTC)
    system.sandboxes["sendgrid"].control.inject_fault("outage")
    # When receipts are sent meanwhile (all fall back to SES)
    accepted = [saga.notify(order_body()) for _ in range(4)]
    for response in accepted:
        assert response.status_code == 202, response.text
        final = saga.wait_for(response.json()["notification_id"], timeout=240)
        assert final["status"] == "delivered_with_fallback"
    fault_end = datetime.now(UTC)

    # And after SendGrid is back, receipts go through it again (the breaker probes and closes)
    system.sandboxes["sendgrid"].control.clear_faults()
    after_start = datetime.now(UTC)
    statuses = []
    for _ in range(8):
        response = saga.notify(order_body())
        assert response.status_code == 202, response.text
        statuses.append(saga.wait_for(response.json()["notification_id"], timeout=240)["status"])
        if statuses[-1] == "delivered" and statuses.count("delivered") >= 2:
            break
    assert statuses[-1] == "delivered", statuses
    after_end = datetime.now(UTC)

    published = publish_emf(cloudwatch, [line for _, line in function_logs[first_line:]])
    assert published > 0

    # Then during the fault SendGrid's error rate and breaker alarms are over their thresholds ...
    rate = alarm_value(cloudwatch, error_rate, fault_start, fault_end)
    assert breaching(error_rate, rate), (rate, error_rate["Threshold"])
    assert rate == 100.0  # every SendGrid call failed
    opened_count = alarm_value(cloudwatch, opened, fault_start, fault_end)
    assert breaching(opened, opened_count), opened_count
    # ... while SES, which took every receipt, is not
    assert not breaching(ses_error_rate, alarm_value(cloudwatch, ses_error_rate, fault_start, fault_end))

    # And after it, both are back under (the alarm would send OK)
    rate_after = alarm_value(cloudwatch, error_rate, after_start, after_end)
    assert not breaching(error_rate, rate_after), rate_after
    assert not breaching(opened, alarm_value(cloudwatch, opened, after_start, after_end))
