"""The operator CLI against a stack deployed through CloudFormation on moto, named as on AWS
(``tidings-dev-NotificationsTable-<random>``): the same boto3 calls it makes on a real account."""

import json
import time

import boto3
import pytest
from support.template import resource_properties

from tidings.api.service import NotificationService
from tidings.notifications.models import NotificationRequest, TimelineEvent
from tidings.notifications.store import NotificationStore, now_iso
from tidings_ops.cli import main

pytestmark = pytest.mark.unit

STACK = "tidings-dev"
SAGA = {
    "StartAt": "ChargePayment",
    "States": {
        "ChargePayment": {"Type": "Pass", "Next": "SendReceiptEmail"},
        "SendReceiptEmail": {"Type": "Pass", "Next": "RecordOutcome"},
        "RecordOutcome": {"Type": "Pass", "End": True},
    },
}


def notification_request(order_reference):
    return NotificationRequest.model_validate(
        {
            "order_reference": order_reference,
            "customer": {"name": "Ada Lovelace", "email": "ada@example.com", "phone": "+447700900123"},
            "payment": {"amount": 2599, "currency": "gbp", "payment_method": "pm_card_visa"},
            "receipt": {"subject": "Your receipt", "text": "Thank you."},
            "sms": {"text": "Paid. Thank you!"},
        }
    )


def stack_template():
    table = resource_properties("NotificationsTable")
    return {
        "Resources": {
            "NotificationsTable": {
                "Type": "AWS::DynamoDB::Table",
                "Properties": {
                    key: table[key] for key in ("BillingMode", "AttributeDefinitions", "KeySchema")
                }
                | {"GlobalSecondaryIndexes": table["GlobalSecondaryIndexes"]},
            },
            "EmailDeadLetterQueue": {"Type": "AWS::SQS::Queue"},
            "EmailRetryQueue": {
                "Type": "AWS::SQS::Queue",
                "Properties": {
                    "RedrivePolicy": {
                        "deadLetterTargetArn": {"Fn::GetAtt": ["EmailDeadLetterQueue", "Arn"]},
                        "maxReceiveCount": 5,
                    }
                },
            },
            "NotificationSagaStateMachine": {
                "Type": "AWS::StepFunctions::StateMachine",
                "Properties": {
                    "RoleArn": "arn:aws:iam::123456789012:role/saga",
                    "DefinitionString": json.dumps(SAGA),
                },
            },
        }
    }


class Deployed:
    def __init__(self):
        cfn = boto3.client("cloudformation")
        cfn.create_stack(StackName=STACK, TemplateBody=json.dumps(stack_template()))
        resources = {
            r["LogicalResourceId"]: r["PhysicalResourceId"]
            for r in cfn.list_stack_resources(StackName=STACK)["StackResourceSummaries"]
        }
        # moto's CloudFormation records the state machine in its plain Step Functions backend, not in
        # the interpreter that runs executions: create it there too, under CloudFormation's name.
        arn = resources["NotificationSagaStateMachine"]
        boto3.client("stepfunctions").create_state_machine(
            name=arn.rsplit(":", 1)[-1],
            definition=json.dumps(SAGA),
            roleArn="arn:aws:iam::123456789012:role/saga",
        )
        self.resources = resources
        self.table = boto3.resource("dynamodb").Table(resources["NotificationsTable"])
        self.store = NotificationStore(self.table)
        self.sqs = boto3.client("sqs")
        self.service = NotificationService(
            store=self.store,
            stepfunctions=lambda: boto3.client("stepfunctions"),
            sqs=lambda: self.sqs,
            state_machine_arn=resources["NotificationSagaStateMachine"],
        )

    def notify(self, reference, client="client-a"):
        accepted = self.service.submit(client, reference, notification_request(reference))
        return accepted.notification_id

    def wait_for_execution(self, notification_id):
        sfn = boto3.client("stepfunctions")
        arn = self.service.state_machine_arn.replace(":stateMachine:", ":execution:") + f":{notification_id}"
        for _ in range(100):
            if sfn.describe_execution(executionArn=arn)["status"] != "RUNNING":
                return
            time.sleep(0.05)


@pytest.fixture
def deployed(moto_aws, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # no samconfig.toml, no running local system: only what the test says
    return Deployed()


def run(capsys, *argv):
    code = main([*argv, "--stack-name", STACK])
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys, *argv):
    code, out, err = run(capsys, *argv, "--json")
    assert code == 0, err
    return json.loads(out)


def test_resources_are_found_through_cloudformation_by_logical_id(deployed):
    # The physical names carry CloudFormation's random suffix, as on AWS
    assert deployed.resources["NotificationsTable"].startswith(f"{STACK}-NotificationsTable-")


def test_notifications_list_get_and_find_by_order_reference(deployed, capsys):
    first = deployed.notify("order-1")
    second = deployed.notify("order-2", client="client-b")
    listed = run_json(capsys, "notifications", "list")
    assert [item["notification_id"] for item in listed["items"]] == [second, first]
    found = run_json(capsys, "notifications", "list", "--order-reference", "order-1")
    assert [item["notification_id"] for item in found["items"]] == [first]
    by_client = run_json(capsys, "notifications", "list", "--client", "client-b")
    assert [item["notification_id"] for item in by_client["items"]] == [second]
    code, out, _err = run(capsys, "notifications", "get", first)
    assert code == 0
    assert "order-1" in out
    assert "ada@example.com" not in out  # masked as the API masks it
    assert "a***@example.com" in out


def test_timeline_and_its_picture(deployed, capsys, tmp_path):
    notification_id = deployed.notify("order-3")
    deployed.wait_for_execution(notification_id)
    deployed.store.add_event(
        notification_id,
        TimelineEvent(
            step="SendReceiptEmail",
            outcome="failed",
            at=now_iso(),
            provider="sendgrid",
            attempt=1,
            details={"error_type": "ProviderUnavailable", "status": 503, "code": "outage"},
        ),
    )
    timeline = run_json(capsys, "notifications", "timeline", notification_id)
    kinds = [(e["kind"], e.get("state")) for e in timeline["entries"]]
    assert ("state_entered", "ChargePayment") in kinds
    assert ("execution_succeeded", None) in kinds
    [call] = [e for e in timeline["entries"] if e["kind"] == "provider_call"]
    assert (call["path"], call["http_status"], call["code"]) == ("/v3/mail/send", 503, "outage")
    svg, png = tmp_path / "t.svg", tmp_path / "t.png"
    code, out, _err = run(
        capsys, "notifications", "timeline", notification_id, "--svg", str(svg), "--png", str(png)
    )
    assert code == 0
    assert "SendReceiptEmail" in out
    assert "<svg" in svg.read_text()
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_executions_list_and_the_state_path(deployed, capsys):
    notification_id = deployed.notify("order-4")
    deployed.wait_for_execution(notification_id)
    [row] = run_json(capsys, "executions", "list")
    assert (row["name"], row["status"]) == (notification_id, "SUCCEEDED")
    shown = run_json(capsys, "executions", "show", notification_id)
    assert [(s["state"], s["status"]) for s in shown["path"]] == [
        ("ChargePayment", "succeeded"),
        ("SendReceiptEmail", "succeeded"),
        ("RecordOutcome", "succeeded"),
    ]
    code, out, _err = run(capsys, "executions", "show", notification_id)
    assert code == 0
    assert "✔ ChargePayment" in out


def test_errors_are_grouped_by_provider_error_and_code(deployed, capsys):
    for reference in ("order-5", "order-6"):
        notification_id = deployed.notify(reference)
        for attempt in (1, 2):
            deployed.store.add_event(
                notification_id,
                TimelineEvent(
                    step="SendReceiptEmail",
                    outcome="failed",
                    at=now_iso(),
                    provider="sendgrid",
                    attempt=attempt,
                    details={"error_type": "ProviderUnavailable", "code": "outage"},
                ),
            )
    [group] = run_json(capsys, "errors", "--since", "1h")
    assert (group["provider"], group["error_type"], group["code"]) == (
        "sendgrid",
        "ProviderUnavailable",
        "outage",
    )
    assert (group["count"], group["notifications"]) == (4, 2)
    assert group["first_seen"] <= group["last_seen"]
    code, out, _err = run(capsys, "errors", "--since", "1h")
    assert code == 0
    assert "ProviderUnavailable" in out


def park(deployed, notification_id):
    url = deployed.resources["EmailDeadLetterQueue"]
    body = {"kind": "email", "notification_id": notification_id, "error": {"Error": "ProviderUnavailable"}}
    return deployed.sqs.send_message(QueueUrl=url, MessageBody=json.dumps(body))["MessageId"]


def test_dlq_list_show_redrive_and_purge_on_cloudformation_names(deployed, capsys):
    message_id = park(deployed, "n-1")
    park(deployed, "n-2")
    [summary] = run_json(capsys, "dlq", "list")
    assert (summary["queue"], summary["messages"]) == ("email", 2)
    shown = run_json(capsys, "dlq", "show", "email", message_id)
    assert (shown["notification_id"], shown["error_type"]) == ("n-1", "ProviderUnavailable")
    assert shown["sent"].endswith(" UTC")  # a readable time, not epoch milliseconds
    code, out, _err = run(capsys, "dlq", "list", "email")
    assert code == 0
    assert "ProviderUnavailable" in out
    # Redrive (not at a terminal: no question asked), then again: nothing left to move
    moved = run_json(capsys, "dlq", "redrive", "email", "--max", "1")
    assert moved["moved"] == 1
    assert moved["to"] == deployed.resources["EmailRetryQueue"]
    again = run_json(capsys, "dlq", "redrive", "email")
    assert again["moved"] == 1
    assert run_json(capsys, "dlq", "redrive", "email")["moved"] == 0
    # Purge asks for --yes when not at a terminal; purging an empty queue is fine
    park(deployed, "n-3")
    code, _out, err = run(capsys, "dlq", "purge", "email")
    assert code == 2
    assert "--yes" in err
    assert run_json(capsys, "dlq", "purge", "email", "--yes")["purged"] == 1
    assert run_json(capsys, "dlq", "purge", "email", "--yes")["purged"] == 0


def test_replay_starts_the_same_request_as_a_new_notification_of_the_same_client(deployed, capsys):
    original = deployed.notify("order-7")
    result = json.loads(run(capsys, "replay", original, "--wait", "1", "--json")[1])
    assert result["original"] == original
    replayed = deployed.store.get(result["replay"])
    assert replayed.client_id == "client-a"
    assert replayed.order_reference.startswith("order-7#replay-")
    assert replayed.execution_arn
    assert set(result["outcome"]) == {"before", "after"}


def json_documents(text):
    decoder, documents, at = json.JSONDecoder(), [], 0
    while at < len(text.strip()):
        document, end = decoder.raw_decode(text, at)
        documents.append(document)
        at = end
        while at < len(text) and text[at].isspace():
            at += 1
    return documents


def test_watch_follows_a_bulk_request_to_completion_and_a_notification_to_its_end(deployed, capsys):
    deployed.service.bulk_queue_url = deployed.sqs.create_queue(QueueName="bulk")["QueueUrl"]
    items = [notification_request(f"order-b{n}").model_dump(mode="json") for n in range(3)]
    bulk = deployed.service.submit_bulk("client-a", "bulk-1", items)
    ids = [item.notification_id for item in bulk.items]
    for notification_id in ids[:2]:
        deployed.store.finish(notification_id, "delivered", None)
    # Two of three finished: the watch gives up at its timeout and says how far it got
    argv = ("notifications", "watch", "--bulk-id", bulk.bulk_id, "--timeout", "1", "--interval", "0.1")
    code, out, _err = run(capsys, *argv)
    assert code == 1
    assert "2 of 3 finished" in out
    deployed.store.finish(ids[2], "delivered_with_fallback", None)
    code, out, _err = run(capsys, *argv, "--json")
    assert code == 0
    last = json_documents(out)[-1]
    assert (last["done"], last["total"]) == (3, 3)
    assert last["counts"] == {"delivered": 2, "delivered_with_fallback": 1}
    code, out, _err = run(capsys, "notifications", "watch", ids[0], "--interval", "0.1")
    assert code == 0
    assert "delivered" in out


# --- bad input: one sentence, exit 2, never a stack trace ---------------------------------------------
@pytest.mark.parametrize(
    "argv",
    [
        ["notifications", "get", "no-such-id"],
        ["notifications", "watch", "no-such-id"],
        ["notifications", "watch", "--bulk-id", "no-such-bulk"],
        ["notifications", "timeline", "no-such-id"],
        ["notifications", "list", "--since", "yesterday"],
        ["notifications", "list", "--cursor", "bogus"],
        ["notifications", "list", "--client", "c", "--cursor", "bogus"],
        ["executions", "show", "no-such-execution"],
        ["errors", "--since", "last tuesday"],
        ["dlq", "list", "nonsense"],
        ["dlq", "show", "email", "no-such-message"],
        ["dlq", "redrive", "nonsense", "--yes"],
        ["dlq", "purge", "nonsense", "--yes"],
        ["replay", "no-such-id"],
    ],
)
def test_a_bad_argument_is_one_sentence_and_exit_2(deployed, capsys, argv):
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert "Traceback" not in out + err
    assert err.startswith("tidings: ")
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "argv",
    [
        ["notifications", "list", "--limit", "0"],
        ["notifications", "list", "--status", "lost"],
        ["executions", "list", "--limit", "many"],
        ["dlq", "list", "--peek", "-1"],
        ["notifications", "watch"],
        ["notifications", "watch", "n-1", "--interval", "0"],
        ["notifications", "watch", "n-1", "--bulk-id", "b-1"],
    ],
)
def test_a_malformed_option_is_a_usage_error(deployed, capsys, argv):
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--stack-name", STACK])
    assert exit_info.value.code == 2
    assert "Traceback" not in capsys.readouterr().err


def test_an_unknown_stack_says_so(deployed, capsys):
    code = main(["notifications", "list", "--stack-name", "tidings-nope"])
    err = capsys.readouterr().err
    assert code == 2
    assert "tidings-nope" in err


def test_a_missing_region_names_aws_default_region(monkeypatch, tmp_path, capsys):
    monkeypatch.chdir(tmp_path)
    for name in ("AWS_DEFAULT_REGION", "AWS_REGION", "AWS_PROFILE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    code = main(["executions", "list", "--stack-name", STACK])
    err = capsys.readouterr().err
    assert code == 2
    assert "AWS_DEFAULT_REGION" in err
    assert "Traceback" not in err


def test_missing_credentials_say_what_to_set(monkeypatch, tmp_path, capsys):
    monkeypatch.chdir(tmp_path)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    code = main(["dlq", "list", "--stack-name", STACK])
    err = capsys.readouterr().err
    assert code == 2
    assert "AWS_PROFILE" in err
    assert "Traceback" not in err


def test_an_unknown_profile_says_so(monkeypatch, tmp_path, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    code = main(["dlq", "list", "--stack-name", STACK, "--profile", "nobody"])
    assert code == 2
    assert "nobody" in capsys.readouterr().err


def test_without_a_running_local_system_local_says_how_to_start_it(monkeypatch, tmp_path, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["dlq", "list", "--local"]) == 2
    assert "make run" in capsys.readouterr().err


def test_the_stack_name_defaults_to_samconfig(monkeypatch, tmp_path):
    from tidings_ops.target import resolve

    monkeypatch.chdir(tmp_path)
    (tmp_path / "samconfig.toml").write_text(
        'version = 0.1\n[default.global.parameters]\nstack_name = "tidings"\n'
        '[dev.global.parameters]\nstack_name = "tidings-dev"\n'
    )
    assert resolve(environ={}).stack_name == "tidings"
    assert resolve(config_env="dev", environ={}).stack_name == "tidings-dev"
    assert resolve(environ={"TIDINGS_STACK": "other"}).stack_name == "other"
    assert resolve(environ={"AWS_DEFAULT_REGION": "eu-west-2"}).region == "eu-west-2"
    assert resolve(environ={"AWS_REGION": "eu-west-2"}).region is None  # boto3 reads AWS_DEFAULT_REGION
