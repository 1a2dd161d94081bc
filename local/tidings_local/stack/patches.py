"""Every replacement of a moto internal the local system makes, and the check that each target exists.

The local system replaces these internals of moto (pinned in pyproject.toml):

* ``LambdaFunction.invoke``: moto would run a function in Docker; here it runs the template's handler
  in a local worker (``lambdas.LambdaRuntime``), so the state machine, boto3 clients and the API all
  reach the real code. When moto has a process of its own (moto_process.py), its ``invoke`` relays the
  call over HTTP to the process that holds the workers.
* ``DomainDispatcherApplication.get_application``: moto picks the backend of every request under one
  global lock, listing its own package directory and trying hundreds of URL patterns before it reads
  the signing name from the Authorization header. For a signed request to one of the services below,
  the same signing name, API target prefix and first path segment always lead to the same backend: the
  first answer is remembered.
* ``AmazonStateLanguageParser.parse``: the interpreter parses a definition with ANTLR for every
  execution (a 1,000-item bulk parses it 1,000 times). The parsed program is immutable (each
  execution's state lives in its own Environment; Map iterations already share one program), so it is
  parsed once per definition.
* ``boto_client_for``: the interpreter builds a new boto3 client (endpoint, SSL context, service model)
  for every Lambda, SQS, DynamoDB or SNS task; boto3 clients are thread-safe, so one per region and
  service is kept. The task modules import the function by name, so each module's reference is
  replaced as well.
* ``parse`` of jsonpath_ng, as the interpreter's JSONPath and ResultPath evaluation import it: every
  call builds a new LALR parser (its yacc tables) and then parses a path the definition fixed, for each
  path of each state of each execution. A parsed path is immutable (``find`` and ``update_or_create``
  change the data, not the path), so each distinct path is parsed once.
* ``DynamoHandler.serialized`` and ``DynamoDBStreamsHandler.serialized``: moto writes each result by
  walking botocore's output shape member by member (picking each value under several spellings of its
  name), though moto's DynamoDB results already have the wire's form (attributes as ``{"S": ...}``):
  in a bulk run that walk was most of the moto process's CPU, the table stream's GetRecords (each
  record with both images) the largest part. A data-plane result (``DIRECT_ACTIONS``) is written with
  ``json.dumps``, keeping what the walk keeps (the output shape's members that are not None); errors
  and every other action keep moto's serializer. A unit test holds the two to the same answers.
* ``dynamo_to_dict``, as moto's DynamoDB results call it on every answer: at every node of the result
  it imports DynamoType and tries four type checks, though nearly every node is a string, a dict or an
  attribute; those three are walked directly (a bulk status read of 1,000 items was a quarter of the
  moto process's time), everything else is left to moto's function.
* ``unix_time_millis`` and the queue's four passes over its messages (``Queue.messages`` and the three
  approximate counts): moto's SQS asks the clock through datetime arithmetic twice per message per pass,
  and every SendMessage computes all the queue's attributes, so a queue holding a bulk run's webhooks
  (5,000 messages: 35 ms per message sent) slowed moto the more the backlog grew. "Now" is read with
  ``time.time()`` once per pass, the same comparisons made (0.4 ms at 5,000).
* ``SQSBackend.receive_message``, ``delete_message`` and ``change_message_visibility``: moto picks a
  receive's messages with no lock, so two concurrent receives of one queue both return the same
  message (half of 3,000 messages came back twice to eight receivers) or fail iterating the in-flight
  set a delete is changing; SQS hides a received message from every other receiver. One lock around
  picking, deleting and re-timing messages; a long poll waits outside it, as moto's does.
* ``method_names_from_class``, as moto's responses call it: every request lists its handler class's
  methods with ``inspect.getmembers`` to see whether the action is one of them. A handler class's
  methods are fixed once the server runs (every patch here is installed before it starts), so each
  class is listed once.
* ``SQSBackend.is_message_valid_based_on_retention_period``: for every message a ReceiveMessage returns,
  moto reads the queue's MessageRetentionPeriod through GetQueueAttributes, which computes every
  attribute three times, the message counts among them, each a pass over all the queue's messages: a
  queue holding a bulk run's thousands of webhooks spent half of moto's time there. The same attribute is
  read from the queue itself.
* ``DynamoDBBackend.transact_write_items``: moto backs up every table a transaction names with
  ``copy.deepcopy`` before writing, the whole table and its stream's records, to put the copy in the
  table's place if the transaction is cancelled: one transaction on a table of 15,000 items took a
  second, so a bulk run's notify calls slowed the more notifications were stored. The items the
  transaction names (its only possible writes) and the stream's length are saved instead and put back
  on a cancellation; the table object stays the one every other part of moto holds.
* ``Table.query`` (through ``Table.all_items``): moto answers every Query by sorting the whole table
  (a Python comparison per step) and then keeping the items of the one partition asked for, or, on an
  index, those whose index key matches: 100 ms a Query on a table of 15,000 items, one a second at
  150,000, every call to moto waiting meanwhile. A Query now hands moto's own code only its candidates,
  in moto's order: the partition's items, or those whose index key attributes equal the asked ones
  (the same comparison moto makes, before its sort rather than after it).
* ``DynamoHandler.call_action``: DynamoDB applies each conditional write atomically; moto's threaded
  server checks a ``ConditionExpression`` and then writes, with no lock, so two concurrent writes can
  both pass the check (a late ``sent`` webhook overwrote ``delivered`` that way), and a transaction
  iterating a table while another request adds to it fails with "dictionary changed size". One lock
  around each DynamoDB request gives the atomicity AWS promises; moto's DynamoDB is GIL-bound anyway,
  so serialising it costs next to nothing.

None of them changes what a request does. Besides, ``install_local_appconfig`` adds the AppConfig
routes moto lacks (environments, deployments, the data plane) to its URL table, next to moto's own.
Nothing of Powertools is patched (the layer runs unchanged).

After a moto upgrade a renamed module, attribute or parameter would make a patch silently do nothing,
or fail far from its cause; ``check_targets`` runs before anything is installed and raises
``PatchTargetMissing`` naming every target that is gone or changed shape.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import importlib
import inspect
import json
import os
import re
import sys
import threading
import time
from dataclasses import dataclass
from functools import cache, lru_cache, wraps
from typing import Any

from tidings_local.stack.lambdas import FunctionPool, LambdaRuntime, PoolClosed

MARK = "_tidings_local"  # set on every replacement, so installing twice is a no-op


@dataclass(frozen=True)
class Target:
    """An attribute of a module (``Class.method`` or a function) that a patch replaces."""

    module: str
    attribute: str
    parameters: tuple[str, ...]  # the replacement's own parameters: moto calls it with these

    @property
    def name(self) -> str:
        return f"{self.module}.{self.attribute}"


_CLIENT_PARAMETERS = ("region", "service", "state_credentials")
LAMBDA_INVOKE = Target(
    "moto.awslambda.models", "LambdaFunction.invoke", ("self", "body", "request_headers", "response_headers")
)
DISPATCH = Target(
    "moto.moto_server.werkzeug_app", "DomainDispatcherApplication.get_application", ("self", "environ")
)
ASL_PARSE = Target(
    "moto.stepfunctions.parser.asl.parse.asl_parser", "AmazonStateLanguageParser.parse", ("definition",)
)
BOTO_CLIENT_FOR = Target(
    "moto.stepfunctions.parser.asl.utils.boto_client", "boto_client_for", _CLIENT_PARAMETERS
)
_TASKS = "moto.stepfunctions.parser.asl.component.state.exec.state_task"
#: The task modules of the integrations the saga uses, each with its own reference to boto_client_for.
TASK_CLIENTS = tuple(
    Target(f"{_TASKS}.{module}", "boto_client_for", _CLIENT_PARAMETERS)
    for module in (
        "lambda_eval_utils",
        "service.state_task_service_sqs",
        "service.state_task_service_dynamodb",
        "service.state_task_service_sns",
    )
)
DYNAMODB_ACTION = Target("moto.dynamodb.responses", "DynamoHandler.call_action", ("self",))
DYNAMODB_SERIALIZED = Target("moto.dynamodb.responses", "DynamoHandler.serialized", ("self", "action_result"))
STREAMS_SERIALIZED = Target(
    "moto.dynamodbstreams.responses", "DynamoDBStreamsHandler.serialized", ("self", "action_result")
)
#: The two JSONPath parsers the interpreter calls for every path it evaluates.
JSON_PATH_PARSE = Target("moto.stepfunctions.parser.asl.utils.json_path", "parse", ("path", "debug"))
RESULT_PATH_PARSE = Target(
    "moto.stepfunctions.parser.asl.component.common.path.result_path", "parse", ("string",)
)
SQS_RETENTION = Target(
    "moto.sqs.models",
    "SQSBackend.is_message_valid_based_on_retention_period",
    ("self", "queue_name", "message"),
)
METHOD_NAMES = Target("moto.core.responses", "method_names_from_class", ("clazz",))
SQS_CLOCK = Target("moto.sqs.models", "unix_time_millis", ("dt",))
#: The queue's passes over all its messages, each replaced by one that reads the clock once.
SQS_PASSES = tuple(
    Target("moto.sqs.models", f"Queue.{name}.fget", ("self",))
    for name in (
        "messages",
        "approximate_number_of_messages",
        "approximate_number_of_messages_not_visible",
        "approximate_number_of_messages_delayed",
    )
)
DYNAMO_TO_DICT = Target("moto.dynamodb.responses", "dynamo_to_dict", ("obj",))
SQS_RECEIVE = Target(
    "moto.sqs.models",
    "SQSBackend.receive_message",
    ("self", "queue_name", "count", "wait_seconds_timeout", "visibility_timeout", "message_attribute_names"),
)
SQS_DELETE = Target("moto.sqs.models", "SQSBackend.delete_message", ("self", "queue_name", "receipt_handle"))
SQS_VISIBILITY = Target(
    "moto.sqs.models",
    "SQSBackend.change_message_visibility",
    ("self", "queue_name", "receipt_handle", "visibility_timeout"),
)
DYNAMODB_TRANSACT = Target(
    "moto.dynamodb.models", "DynamoDBBackend.transact_write_items", ("self", "transact_items")
)
TABLE_QUERY = Target(
    "moto.dynamodb.models.table",
    "Table.query",
    (
        "self",
        "hash_key",
        "range_comparison",
        "range_objs",
        "limit",
        "exclusive_start_key",
        "scan_index_forward",
        "projection_expressions",
        "index_name",
        "consistent_read",
        "filter_expression",
        "hash_key_conditions",
        "range_key_conditions",
        "filter_kwargs",
    ),
)
TABLE_ALL_ITEMS = Target("moto.dynamodb.models.table", "Table.all_items", ("self",))
#: The ``copy`` module as moto's DynamoDB backend refers to it (replaced there, for transactions only).
DYNAMODB_COPY = Target("moto.dynamodb.models", "copy", ())
#: Not replaced, read: tidings_local.stack.appconfig serves deployments of moto's hosted versions.
APPCONFIG_VERSION = Target("moto.appconfig.models", "ConfigurationProfile.get_version", ("self", "version"))
TARGETS = (
    LAMBDA_INVOKE,
    DISPATCH,
    ASL_PARSE,
    BOTO_CLIENT_FOR,
    *TASK_CLIENTS,
    DYNAMODB_ACTION,
    DYNAMODB_SERIALIZED,
    STREAMS_SERIALIZED,
    JSON_PATH_PARSE,
    RESULT_PATH_PARSE,
    METHOD_NAMES,
    SQS_RETENTION,
    SQS_CLOCK,
    *SQS_PASSES,
    DYNAMO_TO_DICT,
    DYNAMODB_TRANSACT,
    DYNAMODB_COPY,
    TABLE_QUERY,
    TABLE_ALL_ITEMS,
    APPCONFIG_VERSION,
)


class PatchTargetMissing(RuntimeError):
    """A moto internal that the local system replaces is gone or has other parameters."""


def resolve(target: Target) -> Any:
    """The object ``target`` names; ``PatchTargetMissing`` when the module or an attribute is gone."""
    try:
        found: Any = importlib.import_module(target.module)
    except ImportError as exc:
        raise PatchTargetMissing(f"{target.name}: module {target.module} cannot be imported ({exc})") from exc
    for part in target.attribute.split("."):
        if not hasattr(found, part):
            raise PatchTargetMissing(f"{target.name}: {part!r} no longer exists")
        found = getattr(found, part)
    return found


def check_targets(targets: tuple[Target, ...] | None = None) -> None:
    """Raise ``PatchTargetMissing`` listing every target that is gone or has other parameters."""
    problems = []
    for target in TARGETS if targets is None else targets:
        try:
            found = resolve(target)
        except PatchTargetMissing as exc:
            problems.append(str(exc))
            continue
        try:
            parameters = tuple(inspect.signature(found).parameters)
        except (TypeError, ValueError):
            parameters = ()
        if parameters != target.parameters:
            problems.append(
                f"{target.name}: parameters are {parameters}, the patch expects {target.parameters}"
            )
    if problems:
        raise PatchTargetMissing(
            "the local system patches moto internals that this moto version does not have "
            "(pin moto to the version in uv.lock, or update tidings_local/stack/patches.py):\n  "
            + "\n  ".join(problems)
        )


# --- Lambda Invoke runs the local handlers -----------------------------------------------------------

_lambda_lock = threading.Lock()
_active_runtime: LambdaRuntime | None = None
_moto_original_invoke: Any = None


def install_moto_lambda_patch(runtime: LambdaRuntime | None) -> None:
    """Make moto's Lambda Invoke run ``runtime``'s handlers; None restores moto's own behaviour."""
    global _active_runtime, _moto_original_invoke
    check_targets()
    from moto.awslambda.models import LambdaFunction

    with _lambda_lock:
        _active_runtime = runtime
        patched = getattr(LambdaFunction.invoke, MARK, False)
        if runtime is not None and not patched:
            _moto_original_invoke = LambdaFunction.invoke
            LambdaFunction.invoke = _moto_invoke  # type: ignore[method-assign]
        elif runtime is None and patched and _moto_original_invoke is not None:
            LambdaFunction.invoke = _moto_original_invoke  # type: ignore[method-assign]


def _moto_invoke(self: Any, body: str, request_headers: Any, response_headers: Any) -> bytes:
    return invoke_locally(self.function_name, body, request_headers, response_headers)


def invoke_locally(function_name: str, body: str, request_headers: Any, response_headers: Any) -> bytes:
    """What moto's Lambda Invoke answers, from the active runtime's pool: the payload, with the function
    error and log tail in ``response_headers`` (also called by moto_process's relay)."""
    runtime = _active_runtime
    event = json.loads(body) if body else {}
    if runtime is None or not runtime.has(function_name):
        response_headers["x-amz-function-error"] = "Unhandled"
        message = f"function {function_name} has no local code (it was not deployed from the template)"
        return json.dumps({"errorType": "Runtime.InvalidEntrypoint", "errorMessage": message}).encode()
    pool = runtime.pool(function_name)
    if request_headers.get("x-amz-invocation-type") == "Event":
        # Asynchronous invoke: accepted at once, run in the background (errors only reach the logs).
        threading.Thread(target=_invoke_quietly, args=(pool, event), daemon=True).start()
        return b""
    try:
        result = pool.invoke(event)
    except PoolClosed:
        # The local system is stopping while an execution still runs: fail its task without a traceback.
        response_headers["x-amz-function-error"] = "Unhandled"
        stopped = {"errorType": "Runtime.Unavailable", "errorMessage": "the local system stopped"}
        return json.dumps(stopped).encode()
    if result.failed:
        response_headers["x-amz-function-error"] = "Unhandled"
    tail = result.logs.encode()[-4096:]
    response_headers["x-amz-log-result"] = base64.b64encode(tail).decode()
    response_headers["x-amz-executed-version"] = "$LATEST"
    return result.payload


#: What a relayed Invoke carries: the headers moto's Lambda Invoke reads, and those it answers with.
RELAYED_REQUEST_HEADERS = ("x-amz-invocation-type",)
RELAYED_RESPONSE_HEADERS = ("x-amz-function-error", "x-amz-log-result", "x-amz-executed-version")


def install_relayed_lambda(relay_url: str) -> None:
    """In moto's own process (moto_process.py): Lambda Invoke answered by the parent's pools, which
    serve ``invoke_locally`` at ``relay_url``/<function name>."""
    check_targets()
    import httpx
    from moto.awslambda.models import LambdaFunction

    # No timeout: an invocation lasts as long as its function's own timeout, which the pool enforces.
    client = httpx.Client(timeout=None, trust_env=False, limits=httpx.Limits(max_connections=None))  # noqa: S113

    def invoke(self: Any, body: str, request_headers: Any, response_headers: Any) -> bytes:
        headers = {
            name: request_headers[name] for name in RELAYED_REQUEST_HEADERS if request_headers.get(name)
        }
        try:
            answer = client.post(f"{relay_url}/{self.function_name}", content=body or "", headers=headers)
        except httpx.HTTPError:
            response_headers["x-amz-function-error"] = "Unhandled"
            stopped = {"errorType": "Runtime.Unavailable", "errorMessage": "the local system stopped"}
            return json.dumps(stopped).encode()
        for name in RELAYED_RESPONSE_HEADERS:
            if name in answer.headers:
                response_headers[name] = answer.headers[name]
        return answer.content

    setattr(invoke, MARK, True)
    with _lambda_lock:
        LambdaFunction.invoke = invoke  # type: ignore[method-assign]


def _invoke_quietly(pool: FunctionPool, event: Any) -> None:
    with contextlib.suppress(PoolClosed):
        pool.invoke(event)


setattr(_moto_invoke, MARK, True)


# --- moto's per-request overheads, removed without changing what any request does -------------------

#: Services whose SigV4 signing name alone decides moto's backend (no path or body sniffing involved).
#: Not "ses": SES v1 and SES v2 both sign as "ses" and moto tells them apart by path.
_DISPATCH_BY_SIGNING_NAME = frozenset(
    {
        "dynamodb",
        "sqs",
        "states",
        "lambda",
        "sns",
        "secretsmanager",
        "logs",
        "monitoring",
        "iam",
        "sts",
        "ssm",
        "kms",
        "events",
        "cloudformation",
    }
)
_CREDENTIAL_SCOPE = re.compile(r"Credential=[^/,\s]+/\d{8}/([^/,\s]+)/([^/,\s]+)/aws4_request")
_speedups_lock = threading.Lock()


def install_moto_speedups() -> None:
    """The dispatch cache, the parse cache, the shared interpreter clients and SQS's retention read
    (see the module doc)."""
    check_targets()
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

    with _speedups_lock:
        if not getattr(DomainDispatcherApplication.get_application, MARK, False):
            DomainDispatcherApplication.get_application = _cached_dispatch(  # type: ignore[method-assign]
                DomainDispatcherApplication.get_application
            )
        _remember_answers(AmazonStateLanguageParser, "parse", maxsize=32, wrap=staticmethod)
        _share_interpreter_clients()
        _read_retention_directly()
        _parse_each_json_path_once()
        _list_handler_methods_once()
        _serialize_dynamodb_results_directly()
        _convert_dynamodb_results_directly()
        _count_sqs_messages_cheaply()
        _roll_back_transactions_by_item()
        _query_only_the_candidates()


def _remember_answers(owner: Any, name: str, *, maxsize: int | None, wrap: Any = None) -> None:
    """Replace ``owner.name`` (a pure function of hashable arguments) by a cache in front of it."""
    original = getattr(owner, name)
    if getattr(original, MARK, False):
        return
    cached = lru_cache(maxsize=maxsize)(original)
    setattr(cached, MARK, True)
    setattr(owner, name, wrap(cached) if wrap is not None else cached)


def _list_handler_methods_once() -> None:
    from moto.core import responses

    _remember_answers(responses, "method_names_from_class", maxsize=None)


def _parse_each_json_path_once() -> None:
    from moto.stepfunctions.parser.asl.component.common.path import result_path
    from moto.stepfunctions.parser.asl.utils import json_path

    for module in (json_path, result_path):
        _remember_answers(module, "parse", maxsize=4096)


#: Per service, the actions whose results moto builds in the wire's form already: items, keys, counts,
#: the consumed capacity and, for the table's stream, its records; no table descriptions.
DIRECT_ACTIONS = {
    "dynamodb": frozenset(
        {
            "GetItem",
            "PutItem",
            "UpdateItem",
            "DeleteItem",
            "Query",
            "Scan",
            "BatchGetItem",
            "BatchWriteItem",
            "TransactGetItems",
            "TransactWriteItems",
        }
    ),
    "dynamodbstreams": frozenset({"GetRecords"}),
}
_DYNAMODB_CONTENT_TYPE = "application/x-amz-json-1.0"  # both services speak JSON 1.0


@cache
def _output_members(service: str, action: str) -> frozenset[str]:
    from moto.core.responses import get_service_model

    output = get_service_model(service).operation_model(action).output_shape
    return frozenset(output.members) if output is not None else frozenset()


def _wire_value(value: Any) -> Any:
    """json.dumps' fallback: a binary attribute (moto hands it over as bytes) goes out in base64, a
    stream record's time in epoch seconds, as moto's serializer writes them."""
    from datetime import datetime

    from moto.core.serialize import TimestampSerializer

    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, datetime):
        return TimestampSerializer._timestamp_unixtimestamp(value)
    raise TypeError(f"{type(value).__name__} has no direct DynamoDB wire form")


def direct_dynamodb_body(service: str, action: str, result: Any) -> str | None:
    """The body moto's serializer would write for a data-plane ``result``, or None where it must."""
    if action not in DIRECT_ACTIONS.get(service, ()) or not isinstance(result, dict):
        return None
    members = _output_members(service, action)
    try:
        return json.dumps(
            {key: value for key, value in result.items() if key in members and value is not None},
            default=_wire_value,
        )
    except (TypeError, ValueError):
        return None


def _serialize_dynamodb_results_directly() -> None:
    from moto.dynamodb.responses import DynamoHandler
    from moto.dynamodbstreams.responses import DynamoDBStreamsHandler

    for handler, service in ((DynamoHandler, "dynamodb"), (DynamoDBStreamsHandler, "dynamodbstreams")):
        original = handler.serialized
        if getattr(original, MARK, False):
            continue
        handler.serialized = _direct_serializer(original, service)  # type: ignore[method-assign]


def _direct_serializer(original: Any, service: str) -> Any:
    def serialized(self: Any, action_result: Any) -> Any:
        body = direct_dynamodb_body(service, self._get_action(), action_result.result)
        if body is None:
            return original(self, action_result)
        headers = {"Content-Type": _DYNAMODB_CONTENT_TYPE, **self.response_headers}
        return 200, headers, body

    setattr(serialized, MARK, True)
    return serialized


def _convert_dynamodb_results_directly() -> None:
    from moto.dynamodb import responses
    from moto.dynamodb.models.dynamo_type import DynamoType

    original = responses.dynamo_to_dict
    if getattr(original, MARK, False):
        return
    plain = (str, int, float, bool, type(None))

    def dynamo_to_dict(obj: Any) -> Any:
        # Exactly the types that have no to_json and are no datetime or DynamoType: what moto's own
        # function would return unchanged or walk into, without its import and checks at every node.
        kind = type(obj)
        if kind in plain:
            return obj
        if kind is DynamoType and obj.type not in ("B", "BS"):
            return {obj.type: dynamo_to_dict(obj.value)}
        if isinstance(obj, dict) and not hasattr(obj, "to_json"):  # items are LimitedSizeDicts
            return {key: dynamo_to_dict(value) for key, value in obj.items()}
        if kind is list:
            return [dynamo_to_dict(value) for value in obj]
        return original(obj)

    setattr(dynamo_to_dict, MARK, True)
    responses.dynamo_to_dict = dynamo_to_dict


def _now_millis(dt: Any = None) -> float:
    """moto's ``unix_time_millis`` (from ``utcnow`` through datetime arithmetic), for "now" in one call."""
    from moto.core.utils import unix_time_millis

    return time.time() * 1000.0 if dt is None else unix_time_millis(dt)


def _count_sqs_messages_cheaply() -> None:
    from moto.sqs import models
    from moto.sqs.models import Queue

    if getattr(models.unix_time_millis, MARK, False):
        return
    setattr(_now_millis, MARK, True)
    models.unix_time_millis = _now_millis  # type: ignore[assignment]

    # Each pass as moto's (visible: now past visible_at; delayed: now before delayed_until), reading the
    # clock once per pass rather than twice per message.
    def messages(self: Any) -> list[Any]:
        now = _now_millis()
        return [m for m in self._messages if now > m.visible_at and not now < m.delayed_until]

    def approximate_number_of_messages(self: Any) -> int:
        return len(messages(self))

    def approximate_number_of_messages_not_visible(self: Any) -> int:
        now = _now_millis()
        return sum(1 for m in self._messages if not now > m.visible_at)

    def approximate_number_of_messages_delayed(self: Any) -> int:
        now = _now_millis()
        return sum(1 for m in self._messages if now < m.delayed_until)

    for getter in (
        messages,
        approximate_number_of_messages,
        approximate_number_of_messages_not_visible,
        approximate_number_of_messages_delayed,
    ):
        setattr(getter, MARK, True)
        setattr(Queue, getter.__name__, property(getter))


def _query_only_the_candidates() -> None:
    from moto.dynamodb.models.table import Table

    query, all_items = Table.query, Table.all_items
    if getattr(query, MARK, False):
        return
    parameters = inspect.signature(query)
    # The items this thread's Query considers, by table: what all_items answers for it meanwhile.
    considered = threading.local()

    def items_in_moto_order(items: list[Any]) -> list[Any]:
        return sorted(
            items, key=lambda item: (item.hash_key, item.range_key) if item.range_key else item.hash_key
        )

    def candidates(table: Any, hash_key: Any, index_name: str | None, conditions: Any) -> list[Any] | None:
        if index_name is None:
            partition = table.items.get(hash_key) if hash_key is not None else None
            if partition is None:
                return []
            return items_in_moto_order(list(partition.values()) if table.range_key_attr else [partition])
        if not conditions:
            return None  # moto filters nothing by the index's hash key: every item is a candidate
        return items_in_moto_order(
            [
                item
                for item in _unsorted_items(table)
                if all((value := item.attrs.get(name)) and value == wanted for name, wanted in conditions)
            ]
        )

    @wraps(query)
    def only_the_candidates(self: Any, *args: Any, **kwargs: Any) -> Any:
        asked = parameters.bind(self, *args, **kwargs).arguments
        found = candidates(
            self, asked.get("hash_key"), asked.get("index_name"), asked.get("hash_key_conditions")
        )
        if found is None:
            return query(self, *args, **kwargs)
        considered.scope = (self, found)
        try:
            return query(self, *args, **kwargs)
        finally:
            considered.scope = None

    @wraps(all_items)
    def all_items_or_the_candidates(self: Any) -> list[Any]:
        scope = getattr(considered, "scope", None)
        if scope is not None and scope[0] is self:
            return list(scope[1])
        return all_items(self)

    for replacement in (only_the_candidates, all_items_or_the_candidates):
        setattr(replacement, MARK, True)
    Table.query = only_the_candidates  # type: ignore[method-assign]
    Table.all_items = all_items_or_the_candidates  # type: ignore[method-assign]


def _unsorted_items(table: Any) -> Any:
    """Every item of a moto table, as stored (moto's ``all_items`` sorts them first)."""
    if not table.range_key_attr:
        yield from table.items.values()
        return
    for partition in table.items.values():
        yield from partition.values()


def _roll_back_transactions_by_item() -> None:
    from moto.dynamodb import models
    from moto.dynamodb.models.table import Table

    transact = models.DynamoDBBackend.transact_write_items
    if getattr(transact, MARK, False):
        return
    in_transaction = threading.local()

    class TablesKeptInTransactions:
        """moto's ``copy`` for its DynamoDB backend, except that a transaction's backup of a table is the
        table itself: what the transaction may change is saved by ``transact_write_items`` below."""

        def __getattr__(self, name: str) -> Any:
            return getattr(copy, name)

        @staticmethod
        def deepcopy(value: Any, memo: dict[int, Any] | None = None) -> Any:
            if isinstance(value, Table) and getattr(in_transaction, "active", False):
                return value
            return copy.deepcopy(value, memo)

    models.copy = TablesKeptInTransactions()  # type: ignore[assignment]

    @wraps(transact)
    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        saved = _SavedItems.of(self, transact_items)
        in_transaction.active = True
        try:
            transact(self, transact_items)
        except BaseException:
            saved.restore()
            raise
        finally:
            in_transaction.active = False

    setattr(transact_write_items, MARK, True)
    models.DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]


@dataclass
class _SavedItems:
    """The items a transaction names, as they were (None: absent), and each table stream's length."""

    items: list[tuple[Any, Any, Any, Any]]  # (table, hash key, range key or None, item or None)
    streams: dict[int, tuple[Any, int]]  # id(table) -> (its stream shard, records before)

    @classmethod
    def of(cls, backend: Any, transact_items: list[dict[str, Any]]) -> _SavedItems:
        from moto.dynamodb.models.dynamo_type import DynamoType

        saved = cls([], {})
        for entry in transact_items:
            for operation in entry.values():
                # the tables moto itself would have backed up: those named as the backend holds them
                name = operation.get("TableName") if isinstance(operation, dict) else None
                table = backend.tables.get(name)
                if table is None:
                    continue
                key = operation.get("Key") or operation.get("Item") or {}
                try:
                    hash_key = DynamoType(key[table.hash_key_attr])
                    range_key = DynamoType(key[table.range_key_attr]) if table.range_key_attr else None
                except (KeyError, TypeError):
                    continue  # no key: moto refuses the operation before it writes anything
                current = table.get_item(hash_key, range_key)
                saved.items.append((table, hash_key, range_key, copy.deepcopy(current)))
                if table.stream_shard is not None:
                    saved.streams.setdefault(id(table), (table.stream_shard, len(table.stream_shard.items)))
        return saved

    def restore(self) -> None:
        for table, hash_key, range_key, item in reversed(self.items):
            if range_key is None:
                if item is None:
                    table.items.pop(hash_key, None)
                else:
                    table.items[hash_key] = item
            elif item is None:
                table.items[hash_key].pop(range_key, None)
            else:
                table.items[hash_key][range_key] = item
        for shard, length in self.streams.values():
            del shard.items[length:]


def _read_retention_directly() -> None:
    from moto.core.utils import unix_time
    from moto.sqs.models import SQSBackend

    if getattr(SQSBackend.is_message_valid_based_on_retention_period, MARK, False):
        return

    def is_message_valid_based_on_retention_period(self: Any, queue_name: str, message: Any) -> bool:
        # the value GetQueueAttributes would report (an int, set by Queue._set_attributes)
        retention_period = self.get_queue(queue_name).message_retention_period
        return bool(retention_period + message.sent_timestamp / 1000 > unix_time())

    setattr(is_message_valid_based_on_retention_period, MARK, True)
    SQSBackend.is_message_valid_based_on_retention_period = is_message_valid_based_on_retention_period  # type: ignore[method-assign]


def _share_interpreter_clients() -> None:
    from moto.stepfunctions.parser.asl.utils import boto_client

    original = boto_client.boto_client_for
    if getattr(original, MARK, False):
        return
    clients: dict[tuple[str, str, str], Any] = {}
    lock = threading.Lock()

    def boto_client_for(region: str, service: str, state_credentials: Any = None) -> Any:
        # moto builds every client with the same fixed keys whatever the state's credentials say.
        key = (region, service, os.environ.get("MOTO_PORT", ""))
        with lock:
            if key not in clients:
                clients[key] = _with_pool(original(region, service), service)
            return clients[key]

    setattr(boto_client_for, MARK, True)
    boto_client.boto_client_for = boto_client_for
    # TASK_CLIENTS are imported by check_targets; any other interpreter module holding the original
    # gets the shared one too.
    for module_name, module in list(sys.modules.items()):
        uses_original = getattr(module, "boto_client_for", None) is original
        if module_name.startswith("moto.stepfunctions.") and uses_original:
            module.boto_client_for = boto_client_for  # type: ignore[attr-defined]


#: Connections each shared interpreter client keeps: one per execution waiting on a task at once (a bulk
#: run has hundreds), where botocore's default of 10 would open and drop a connection per task.
INTERPRETER_POOL_CONNECTIONS = 1024


def _with_pool(client: Any, service: str) -> Any:
    """The same client as moto's (endpoint, keys, timeouts, no retries), with a larger connection pool."""
    import boto3
    from botocore.config import Config

    credentials = client._request_signer._credentials
    return boto3.client(
        service,
        region_name=client.meta.region_name,
        endpoint_url=client.meta.endpoint_url,
        aws_access_key_id=credentials.access_key,
        aws_secret_access_key=credentials.secret_key,
        config=client.meta.config.merge(Config(max_pool_connections=INTERPRETER_POOL_CONNECTIONS)),
    )


def _cached_dispatch(original: Any) -> Any:
    def get_application(self: Any, environ: dict[str, Any]) -> Any:
        path = environ.get("PATH_INFO", "")
        match = _CREDENTIAL_SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
        if (
            match is None
            or match.group(2) not in _DISPATCH_BY_SIGNING_NAME
            or path.startswith(("/moto-api", "/latest/"))
        ):
            return original(self, environ)
        # One signing name can serve two backends (ses: SES v1 at "/", SES v2 under "/v2/"; dynamodb:
        # tables and streams, told apart by X-Amz-Target), so those take part in the key too.
        target = environ.get("HTTP_X_AMZ_TARGET", "").split(".", 1)[0]
        key = (match.group(2), target, path.split("/", 2)[1] if path.count("/") > 1 else "")
        apps = self.__dict__.setdefault("_tidings_apps_by_signing_name", {})
        app = apps.get(key)
        if app is None:
            app = apps[key] = original(self, environ)
        return app

    setattr(get_application, MARK, True)
    return get_application


# --- DynamoDB and SQS: atomic where AWS is -------------------------------------------------------------


def install_atomic_backends() -> None:
    """Serve one DynamoDB request at a time (moto checks a condition, then writes) and pick, delete and
    re-time SQS messages one receive at a time (moto hands one message to two receivers): the module doc."""
    check_targets()
    from moto.dynamodb.responses import DynamoHandler

    with _speedups_lock:
        if not getattr(DynamoHandler.call_action, MARK, False):
            DynamoHandler.call_action = _holding(threading.Lock(), DynamoHandler.call_action)  # type: ignore[method-assign]
        _receive_each_message_once()


def _receive_each_message_once() -> None:
    from moto.sqs.models import SQSBackend

    receive = SQSBackend.receive_message
    if getattr(receive, MARK, False):
        return
    lock = threading.Lock()

    def receive_message(
        self: Any,
        queue_name: str,
        count: int,
        wait_seconds_timeout: int,
        visibility_timeout: int,
        message_attribute_names: list[str] | None = None,
    ) -> list[Any]:
        # moto's own long poll, with the lock held only while messages are picked, never while waiting.
        deadline = time.monotonic() + (wait_seconds_timeout or 0)
        while True:
            with lock:
                result: list[Any] = receive(
                    self, queue_name, count, 0, visibility_timeout, message_attribute_names
                )
            remaining = deadline - time.monotonic()
            if result or remaining <= 0:
                return result
            self.get_queue(queue_name).wait_for_messages(min(1.0, remaining))

    setattr(receive_message, MARK, True)
    SQSBackend.receive_message = receive_message  # type: ignore[method-assign]
    for name in ("delete_message", "change_message_visibility"):
        setattr(SQSBackend, name, _holding(lock, getattr(SQSBackend, name)))


def _holding(lock: threading.Lock, original: Any) -> Any:
    """``original`` run with ``lock`` held (with its signature: check_targets reads it once installed)."""

    @wraps(original)
    def locked(*args: Any, **kwargs: Any) -> Any:
        with lock:
            return original(*args, **kwargs)

    setattr(locked, MARK, True)
    return locked


# --- AppConfig: the routes moto lacks, added to its URL table ------------------------------------------


def install_local_appconfig() -> None:
    """Serve environments, deployments and the data plane beside moto's AppConfig routes (added, not
    replacing any: tidings_local.stack.appconfig); run before the server builds its AppConfig app."""
    check_targets()
    from moto.appconfig import urls

    from tidings_local.stack import appconfig

    with _speedups_lock:
        if getattr(urls, MARK, False):
            return
        urls.url_paths.update(appconfig.handlers())
        urls.url_paths[appconfig.APPLICATIONS] = appconfig.list_applications(
            urls.url_paths[appconfig.APPLICATIONS]
        )
        setattr(urls, MARK, True)
