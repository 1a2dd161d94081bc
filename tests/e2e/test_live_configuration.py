"""Live configuration on the running local system: `tidings config set` lowers Twilio's rate and sends
e-mail through SES only; the running functions use it within the TTL (1 s here, LiveConfigTtlSeconds)
without a restart; invalid changes are refused and the last good configuration stays in force."""

import json
import time

import pytest
from support.e2e import FAST_SAGA, order_body

from tidings_ops.cli import main

pytestmark = pytest.mark.e2e

TTL_SECONDS = float(FAST_SAGA["LiveConfigTtlSeconds"])


def config(system, capsys, *argv):
    """`tidings config ...` on the local system's endpoint, found by name as on any stack."""
    code = main(
        [
            "config",
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
    return code, out, err


@pytest.fixture
def deployed_defaults(system, capsys, monkeypatch, tmp_path):
    """The configuration deployed before the test, deployed again after it (other tests expect it)."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    code, out, err = config(system, capsys, "show")
    assert code == 0, err
    before = json.loads(out)["document"]
    yield before
    original = tmp_path / "original.json"
    original.write_text(json.dumps(before))
    code, _out, err = config(system, capsys, "set", "--file", str(original))
    assert code == 0, err
    # Containers that polled during the test keep their copy for one TTL: let it run out, so the next
    # test meets the defaults (a configured 1 s cache lifetime, not a retry interval).
    time.sleep(TTL_SECONDS + 0.5)


def test_a_live_change_takes_effect_without_a_restart_and_a_bad_one_keeps_the_last_good(
    system, saga, capsys, deployed_defaults, function_logs
):
    # Given the template's defaults are deployed (the stack's own hosted version)
    assert deployed_defaults["email_providers"] == "sendgrid_then_ses"
    assert deployed_defaults["twilio_rate_per_second"] == 10
    # When the operator lowers Twilio's rate and sends e-mail through SES only (a SendGrid incident)
    code, out, err = config(system, capsys, "set", "twilio_rate_per_second=2", "email_providers=ses_only")
    assert code == 0, err
    # And then tries two invalid changes: refused before anything is deployed
    code, _out, err = config(system, capsys, "set", "twilio_rate_per_second=0")
    assert code == 2
    assert "twilio_rate_per_second" in err
    code, _out, err = config(system, capsys, "set", "sms_providers=carrier_pigeon")
    assert code == 2
    code, out, _err = config(system, capsys, "show")
    assert json.loads(out)["document"]["email_providers"] == "ses_only"
    # And a document written past the CLI is refused by AppConfig's own validator at deployment
    appconfig = system.boto3_client("appconfig")
    [app] = [a for a in appconfig.list_applications()["Items"] if a["Name"] == "tidings-local"]
    [env] = appconfig.list_environments(ApplicationId=app["Id"])["Items"]
    [profile] = appconfig.list_configuration_profiles(ApplicationId=app["Id"])["Items"]
    [strategy] = appconfig.list_deployment_strategies()["Items"]
    bad = appconfig.create_hosted_configuration_version(
        ApplicationId=app["Id"],
        ConfigurationProfileId=profile["Id"],
        Content=b'{"email_providers": "sendgrid_then_ses", "twilio_rate_per_second": -5}',
        ContentType="application/json",
    )["VersionNumber"]
    with pytest.raises(appconfig.exceptions.BadRequestException):
        appconfig.start_deployment(
            ApplicationId=app["Id"],
            EnvironmentId=env["Id"],
            DeploymentStrategyId=strategy["Id"],
            ConfigurationProfileId=profile["Id"],
            ConfigurationVersion=str(bad),
        )
    # Once the running containers' copy is older than the TTL (no restart, no redeploy)
    time.sleep(TTL_SECONDS + 0.5)
    logs_before = len(function_logs)
    final = saga.run(order_body())
    # Then the receipt went through SES without a call to SendGrid, as the last good document says
    assert final["status"] == "delivered_with_fallback", final
    steps = {(event["step"], event["outcome"]) for event in final["timeline"]}
    assert ("SendReceiptEmail", "skipped") in steps
    assert ("SendReceiptEmailViaSes", "sent") in steps
    [skipped] = [event for event in final["timeline"] if event["step"] == "SendReceiptEmail"]
    assert skipped["details"]["reason"] == "switched_off"
    assert final["channels"]["email"]["provider"] == "ses"
    # And the SMS function's container applied Twilio's lower rate (its bucket refills at 2/s now)
    applied = [
        json.loads(line)
        for logical_id, line in function_logs[logs_before:]
        if logical_id == "SendSmsFunction" and "live configuration applied" in line
    ]
    assert applied, "the SMS function never applied the live configuration"
    assert "twilio_rate_per_second" in applied[-1]["changed"]
