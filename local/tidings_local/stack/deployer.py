"""Create a transformed template's resources on the moto server, one AWS API call set per resource type.

Why not moto's CloudFormation (create_stack)? It lacks AWS::SecretsManager::*, AWS::ApiGatewayV2::* and
AWS::CloudWatch::Alarm, drops properties such as a table's TimeToLiveSpecification, wires SQS event
source mappings to moto's synchronous invoke (no batches, no partial failures) and reports a failed
resource with little detail. Calling the service APIs ourselves, in dependency order, keeps every
property the template declares, names the resource and property that failed, and lets the local system
take over what moto cannot do (Lambda code, SQS pollers, the HTTP API). Types without a handler are
skipped with one debug line, so the template can grow without this file knowing every resource.

The handlers cover what template.yaml uses (and the monitoring it is growing: alarms, dashboards, log
groups, SNS topics and subscriptions), not all of CloudFormation: a feature that would behave
differently here than on AWS (provisioned tables, ANY routes, a named stage, a definition without a
file) fails with a TemplateError naming the resource rather than deploy something else.
"""

from __future__ import annotations

import io
import json
import logging
import secrets
import string
import uuid
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tidings_local.stack.lambdas import FunctionSpec, LambdaRuntime
from tidings_local.stack.stream_poller import StreamMapping
from tidings_local.stack.template import (
    ACCOUNT_ID,
    NO_VALUE,
    REGION,
    Resolver,
    Template,
    TemplateError,
    deployment_order,
)

log = logging.getLogger(__name__)


@dataclass
class Deployed:
    """A resource as created: what Ref returns and its GetAtt attributes."""

    logical_id: str
    type: str
    ref: Any
    attrs: dict[str, Any] = field(default_factory=dict)
    properties: dict[str, Any] = field(default_factory=dict)  # resolved properties
    skipped: bool = False


@dataclass
class SqsMapping:
    """An SQS event source the local poller serves (moto's own mapping has no batch semantics)."""

    logical_id: str
    function_name: str
    queue_arn: str
    queue_url: str
    batch_size: int = 10
    batching_window: float = 0.0
    report_batch_item_failures: bool = False
    enabled: bool = True
    max_concurrency: int = 5


@dataclass
class Route:
    method: str  # upper case, or ANY
    path: str  # /notifications/{id}, or $default
    function_arn: str
    authorizer: str | None  # name of the API's authorizer, None when the route is open
    scopes: list[str] = field(default_factory=list)


@dataclass
class JwtAuthorizer:
    name: str
    issuer: str
    audience: list[str]
    identity_source: str = "$request.header.Authorization"


@dataclass(frozen=True)
class Throttle:
    """A stage's route settings: steady requests per second and the burst above it."""

    rate: float
    burst: int


@dataclass
class HttpApi:
    logical_id: str
    api_id: str
    routes: list[Route] = field(default_factory=list)
    authorizers: dict[str, JwtAuthorizer] = field(default_factory=dict)
    #: The $default stage's DefaultRouteSettings and RouteSettings (by route key) throttling.
    default_throttle: Throttle | None = None
    route_throttles: dict[str, Throttle] = field(default_factory=dict)


@dataclass
class DeployedStack:
    template: Template
    resources: dict[str, Deployed]
    sqs_mappings: list[SqsMapping]
    http_apis: list[HttpApi]
    outputs: dict[str, Any]
    stream_mappings: list[StreamMapping] = field(default_factory=list)

    def physical_id(self, logical_id: str) -> Any:
        return self.resources[logical_id].ref

    def attr(self, logical_id: str, name: str) -> Any:
        return self.resources[logical_id].attrs[name]

    def of_type(self, resource_type: str) -> dict[str, Deployed]:
        return {k: v for k, v in self.resources.items() if v.type == resource_type and not v.skipped}

    def facts(self) -> dict[str, Any]:
        """What CloudFormation tells an operator of a deployed stack (ListStackResources, DescribeStacks'
        parameters and outputs), for the operator commands on the local system (tidings_ops.stack)."""
        return {
            "resources": {
                k: {"type": v.type, "id": v.ref}
                for k, v in self.resources.items()
                if not v.skipped and isinstance(v.ref, str)
            },
            "parameters": {k: str(v) for k, v in self.template.parameters.items()},
            "outputs": {k: v for k, v in self.outputs.items() if isinstance(v, str)},
        }


def _throttle(settings: dict[str, Any] | None) -> Throttle | None:
    """API Gateway's throttling of one route setting, when it names both its rate and its burst."""
    settings = settings or {}
    rate, burst = settings.get("ThrottlingRateLimit"), settings.get("ThrottlingBurstLimit")
    if rate is None or burst is None:
        return None
    return Throttle(rate=float(rate), burst=int(burst))


def _dummy_zip() -> bytes:
    # moto stores function/layer code; the real code runs from its folder in a local worker.
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("README.txt", "code runs from the template's CodeUri folder")
    return buffer.getvalue()


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


class Deployer:
    """Deploys ``template`` on the moto server at ``moto_url``."""

    def __init__(
        self,
        template: Template,
        moto_url: str,
        runtime: LambdaRuntime | None = None,
        secret_values: Mapping[str, Any] | None = None,
        function_env: Mapping[str, Mapping[str, str]] | None = None,
        api_url: str = "http://127.0.0.1:3000",
    ) -> None:
        import boto3

        self.template = template
        self.runtime = runtime
        self.secret_values = dict(secret_values or {})
        self.function_env = {k: dict(v) for k, v in (function_env or {}).items()}
        self.api_url = api_url
        self.session = boto3.session.Session(
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            aws_session_token="testing",
            region_name=REGION,
        )
        self.moto_url = moto_url
        self._clients: dict[str, Any] = {}
        self.deployed: dict[str, Deployed] = {}
        self.sqs_mappings: list[SqsMapping] = []
        self.stream_mappings: list[StreamMapping] = []
        self.http_apis: dict[str, HttpApi] = {}
        self.resolver = Resolver(template, self._ref, self._get_att)
        self._zip = _dummy_zip()

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self.session.client(service, endpoint_url=self.moto_url)
        return self._clients[service]

    def _ref(self, logical_id: str) -> Any:
        if logical_id not in self.deployed:
            raise TemplateError(f"Ref to {logical_id}, which is not a resource that was created")
        return self.deployed[logical_id].ref

    def _get_att(self, logical_id: str, attribute: str) -> Any:
        resource = self.deployed.get(logical_id)
        if resource is None:
            raise TemplateError(f"GetAtt {logical_id}.{attribute}: no such resource was created")
        if attribute not in resource.attrs:
            if resource.skipped:
                return f"arn:aws:local:{REGION}:{ACCOUNT_ID}:{logical_id}/{attribute}"
            raise TemplateError(f"GetAtt {logical_id}.{attribute}: attribute not available locally")
        return resource.attrs[attribute]

    def _localize(self, value: Any) -> Any:
        """Point execute-api URLs of the template's HTTP APIs (e.g. a webhook base URL) at the local API."""
        if isinstance(value, str) and ".execute-api." in value:
            for api in self.http_apis.values():
                prefix = f"https://{api.api_id}.execute-api.{REGION}.amazonaws.com"
                value = value.replace(prefix, self.api_url.rstrip("/"))
            return value
        if isinstance(value, dict):
            return {k: self._localize(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self._localize(v) for v in value]
        return value

    def physical_name(self, logical_id: str, max_length: int = 64) -> str:
        # CloudFormation's pattern is <stack>-<LogicalId>-<random>; locally it is kept predictable.
        return f"{self.template.stack_name}-{logical_id}"[:max_length]

    # --- the run -----------------------------------------------------------------------------------

    def deploy(self) -> DeployedStack:
        resources = self.template.resources
        for logical_id in deployment_order(resources):
            resource = resources[logical_id]
            kind = resource.get("Type", "")
            condition = resource.get("Condition")
            if condition and not self.resolver.condition(condition):
                log.debug("resource skipped by its condition", extra={"resource": logical_id})
                continue
            handler = self.HANDLERS.get(kind)
            if handler is None:
                log.debug("resource type not deployed locally: %s (%s)", kind, logical_id)
                self.deployed[logical_id] = Deployed(
                    logical_id, kind, self.physical_name(logical_id), skipped=True
                )
                continue
            props = self._localize(self.resolver.resolve(resource.get("Properties") or {}))
            try:
                deployed = handler(self, logical_id, props)
            except TemplateError:
                raise
            except Exception as exc:
                raise TemplateError(f"could not create {logical_id} ({kind}): {exc}") from exc
            deployed.properties = props
            self.deployed[logical_id] = deployed
        outputs = {}
        for name, output in (self.template.cfn.get("Outputs") or {}).items():
            condition = output.get("Condition")
            if condition and not self.resolver.condition(condition):
                continue
            outputs[name] = self._localize(self.resolver.resolve(output.get("Value")))
        return DeployedStack(
            self.template,
            self.deployed,
            self.sqs_mappings,
            list(self.http_apis.values()),
            outputs,
            self.stream_mappings,
        )

    # --- DynamoDB ----------------------------------------------------------------------------------

    def _dynamodb_table(self, logical_id: str, p: dict[str, Any]) -> Deployed:
        ddb = self.client("dynamodb")
        name = p.get("TableName") or self.physical_name(logical_id, 255)
        if p.get("BillingMode") != "PAY_PER_REQUEST":
            raise TemplateError(
                f"{logical_id}: only on-demand tables (BillingMode PAY_PER_REQUEST) run locally"
            )
        args: dict[str, Any] = {
            "TableName": name,
            "AttributeDefinitions": p["AttributeDefinitions"],
            "KeySchema": p["KeySchema"],
            "BillingMode": "PAY_PER_REQUEST",
        }
        if p.get("GlobalSecondaryIndexes"):
            args["GlobalSecondaryIndexes"] = _numbers(p["GlobalSecondaryIndexes"])
        stream = p.get("StreamSpecification")
        if stream:
            args["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": stream["StreamViewType"]}
        table = ddb.create_table(**args)["TableDescription"]
        ttl = p.get("TimeToLiveSpecification")
        if ttl and _bool(ttl.get("Enabled", False)):
            ddb.update_time_to_live(
                TableName=name,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["AttributeName"]},
            )
        pitr = p.get("PointInTimeRecoverySpecification")
        if pitr and _bool(pitr.get("PointInTimeRecoveryEnabled", False)):
            ddb.update_continuous_backups(
                TableName=name,
                PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True},
            )
        attrs = {"Arn": table["TableArn"]}
        if table.get("LatestStreamArn"):
            attrs["StreamArn"] = table["LatestStreamArn"]
        return Deployed(logical_id, "AWS::DynamoDB::Table", name, attrs)

    # --- SQS / SNS ---------------------------------------------------------------------------------

    def _sqs_queue(self, logical_id: str, p: dict[str, Any]) -> Deployed:
        name = p.get("QueueName") or self.physical_name(logical_id, 80)
        attributes = {k: _text(v) for k, v in p.items() if k != "QueueName"}
        url = self.client("sqs").create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        arn = f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{name}"
        return Deployed(logical_id, "AWS::SQS::Queue", url, {"Arn": arn, "QueueName": name, "QueueUrl": url})

    def _sns_topic(self, logical_id: str, p: dict[str, Any]) -> Deployed:
        sns = self.client("sns")
        name = p.get("TopicName") or self.physical_name(logical_id, 256)
        attributes = {k: _text(v) for k, v in p.items() if k in ("DisplayName", "KmsMasterKeyId")}
        arn = sns.create_topic(Name=name, Attributes=attributes)["TopicArn"]
        for subscription in p.get("Subscription") or []:
            sns.subscribe(TopicArn=arn, Protocol=subscription["Protocol"], Endpoint=subscription["Endpoint"])
        return Deployed(logical_id, "AWS::SNS::Topic", arn, {"TopicArn": arn, "TopicName": name})

    def _sns_subscription(self, logical_id: str, p: dict[str, Any]) -> Deployed:
        attributes = {
            k: _text(v)
            for k, v in p.items()
            if k
            in ("FilterPolicy", "FilterPolicyScope", "RawMessageDelivery", "RedrivePolicy", "DeliveryPolicy")
        }
        arn = self.client("sns").subscribe(
            TopicArn=p["TopicArn"],
            Protocol=p["Protocol"],
            Endpoint=p.get("Endpoint", ""),
            Attributes=attributes,
            ReturnSubscriptionArn=True,
        )["SubscriptionArn"]
        return Deployed(logical_id, "AWS::SNS::Subscription", arn, {"Arn": arn})

    # --- Secrets Manager ---------------------------------------------------------------------------

    def _secret(self, logical_id: str, p: dict[str, Any]) -> Deployed:
        name = p.get("Name") or self.physical_name(logical_id, 512)
        value = self._secret_value(logical_id, name, p)
        args: dict[str, Any] = {"Name": name, "SecretString": value}
        if p.get("Description"):
            args["Description"] = p["Description"]
        arn = self.client("secretsmanager").create_secret(**args)["ARN"]
        return Deployed(logical_id, "AWS::SecretsManager::Secret", arn, {"Id": arn})

    def _secret_value(self, logical_id: str, name: str, p: dict[str, Any]) -> str:
        # Seeds match the logical id, the full name, or the name's last segment ("tidings/dev/stripe").
        for key in (logical_id, name, name.rsplit("/", 1)[-1]):
            if key in self.secret_values:
                value = self.secret_values[key]
                return value if isinstance(value, str) else json.dumps(value)
        if "SecretString" in p:
            return _text(p["SecretString"])
        # No seed and no value: a random one, as GenerateSecretString makes by default.
        alphabet = string.ascii_letters + string.digits
        return "".join(secrets.choice(alphabet) for _ in range(32))

    # --- IAM ---------------------------------------------------------------------------------------

    def _iam_role(self, logical_id: str, p: dict[str, Any]) -> Deployed:
        iam = self.client("iam")
        name = p.get("RoleName") or self.physical_name(logical_id, 64)
        role = iam.create_role(
            RoleName=name,
            Path=p.get("Path", "/"),
            AssumeRolePolicyDocument=json.dumps(p.get("AssumeRolePolicyDocument") or {}),
        )["Role"]
        # IAM is not enforced locally: inline policies are stored when moto accepts them, for inspection.
        for policy in p.get("Policies") or []:
            try:
                iam.put_role_policy(
                    RoleName=name,
                    PolicyName=policy["PolicyName"],
                    PolicyDocument=json.dumps(policy["PolicyDocument"]),
                )
            except Exception as exc:
                log.debug(
                    "role policy not stored locally: %s (%s): %s", policy.get("PolicyName"), logical_id, exc
                )
        return Deployed(logical_id, "AWS::IAM::Role", name, {"Arn": role["Arn"], "RoleId": role["RoleId"]})

    # --- Lambda ------------------------------------------------------------------------------------

    def _layer_version(self, logical_id: str, p: dict[str, Any]) -> Deployed:
        args: dict[str, Any] = {
            "LayerName": p.get("LayerName") or self.physical_name(logical_id, 64),
            "Content": {"ZipFile": self._zip},
        }
        for key in ("Description", "CompatibleRuntimes", "CompatibleArchitectures", "LicenseInfo"):
            if p.get(key):
                args[key] = p[key]
        arn = self.client("lambda").publish_layer_version(**args)["LayerVersionArn"]
        return Deployed(logical_id, "AWS::Lambda::LayerVersion", arn, {"LayerVersionArn": arn})

    def _lambda_function(self, logical_id: str, p: dict[str, Any]) -> Deployed:
        name = p.get("FunctionName") or self.physical_name(logical_id, 64)
        variables = {k: _text(v) for k, v in ((p.get("Environment") or {}).get("Variables") or {}).items()}
        args: dict[str, Any] = {
            "FunctionName": name,
            "Runtime": p.get("Runtime", "python3.13"),
            "Role": p["Role"],
            "Handler": p["Handler"],
            "Code": {"ZipFile": self._zip},
            "Timeout": int(p.get("Timeout", 3)),
            "MemorySize": int(p.get("MemorySize", 128)),
            "Environment": {"Variables": variables},
        }
        for key in ("Description", "Layers", "Architectures", "TracingConfig"):
            if p.get(key):
                args[key] = p[key]
        arn = self.client("lambda").create_function(**args)["FunctionArn"]
        reserved = p.get("ReservedConcurrentExecutions")
        if reserved is not None:
            self.client("lambda").put_function_concurrency(
                FunctionName=name, ReservedConcurrentExecutions=int(reserved)
            )
        if self.runtime is not None:
            spec = FunctionSpec(
                logical_id=logical_id,
                function_name=name,
                handler=p["Handler"],
                code_dir=self._code_dir(logical_id),
                environment=variables,
                timeout=float(args["Timeout"]),
                memory_mb=args["MemorySize"],
                runtime=args["Runtime"],
                # ReservedConcurrentExecutions caps the containers, as on AWS.
                max_concurrency=int(reserved) if reserved is not None else 1000,
            )
            # As `sam local --env-vars`: "Parameters" applies to every function, then the function's own
            # entry; only variables the template declares can be overridden.
            overrides = {**self.function_env.get("Parameters", {}), **self.function_env.get(logical_id, {})}
            self.runtime.register(spec, {k: v for k, v in overrides.items() if k in variables})
        return Deployed(logical_id, "AWS::Lambda::Function", name, {"Arn": arn})

    def _code_dir(self, logical_id: str) -> Path:
        if logical_id in self.template.code_dirs:
            return self.template.code_dirs[logical_id]
        raise TemplateError(f"{logical_id}: code is not in a local folder (CodeUri) and cannot run locally")

    def _event_source_mapping(self, logical_id: str, p: dict[str, Any]) -> Deployed:
        source = str(p.get("EventSourceArn", ""))
        mapping_id = str(uuid.uuid4())
        if source.startswith("arn:aws:dynamodb:") and "/stream/" in source:
            return self._stream_mapping(logical_id, mapping_id, source, p)
        if not source.startswith("arn:aws:sqs:"):
            log.debug("event source not polled locally: %s (%s)", source, logical_id)
            return Deployed(logical_id, "AWS::Lambda::EventSourceMapping", mapping_id, skipped=True)
        queue_name = source.rsplit(":", 1)[-1]
        queue_url = self.client("sqs").get_queue_url(QueueName=queue_name)["QueueUrl"]
        scaling = p.get("ScalingConfig") or {}
        self.sqs_mappings.append(
            SqsMapping(
                logical_id=logical_id,
                function_name=str(p["FunctionName"]),
                queue_arn=source,
                queue_url=queue_url,
                batch_size=int(p.get("BatchSize", 10)),
                batching_window=float(p.get("MaximumBatchingWindowInSeconds", 0)),
                report_batch_item_failures="ReportBatchItemFailures"
                in (p.get("FunctionResponseTypes") or []),
                enabled=_bool(p.get("Enabled", True)),
                # Lambda starts with five concurrent batches per queue; ScalingConfig caps them.
                max_concurrency=int(scaling.get("MaximumConcurrency", 5)),
            )
        )
        return Deployed(logical_id, "AWS::Lambda::EventSourceMapping", mapping_id)

    def _stream_mapping(self, logical_id: str, mapping_id: str, source: str, p: dict[str, Any]) -> Deployed:
        """A DynamoDB stream source, read by the local stream poller (moto has no reader for it)."""
        destination = ((p.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination")
        filters = [
            json.loads(item["Pattern"]) if isinstance(item.get("Pattern"), str) else item.get("Pattern") or {}
            for item in ((p.get("FilterCriteria") or {}).get("Filters") or [])
        ]
        self.stream_mappings.append(
            StreamMapping(
                logical_id=logical_id,
                function_name=str(p["FunctionName"]),
                stream_arn=source,
                batch_size=int(p.get("BatchSize", 100)),
                starting_position=str(p.get("StartingPosition", "LATEST")),
                maximum_retry_attempts=int(p.get("MaximumRetryAttempts", -1)),
                on_failure_queue_arn=str(destination) if destination else None,
                filters=filters,
                enabled=_bool(p.get("Enabled", True)),
            )
        )
        return Deployed(logical_id, "AWS::Lambda::EventSourceMapping", mapping_id)

    # --- EventBridge -------------------------------------------------------------------------------

    def _event_bus(self, logical_id: str, p: dict[str, Any]) -> Deployed:
        name = p.get("Name") or self.physical_name(logical_id, 256)
        arn = self.client("events").create_event_bus(Name=name)["EventBusArn"]
        return Deployed(logical_id, "AWS::Events::EventBus", name, {"Arn": arn, "Name": name})

    # --- Step Functions ----------------------------------------------------------------------------

    def _state_machine(self, logical_id: str, p: dict[str, Any]) -> Deployed:
        if logical_id not in self.template.definition_files:
            raise TemplateError(f"{logical_id}: no definition file (DefinitionUri) to run locally")
        definition = self.template.definition_files[logical_id].read_text()
        for key, value in (p.get("DefinitionSubstitutions") or {}).items():
            definition = definition.replace("${" + key + "}", _text(value))
        json.loads(definition)  # fail here, naming the resource, rather than inside moto
        name = p.get("StateMachineName") or self.physical_name(logical_id, 80)
        args: dict[str, Any] = {
            "name": name,
            "definition": definition,
            "roleArn": p.get("RoleArn") or f"arn:aws:iam::{ACCOUNT_ID}:role/{name}",
            "type": p.get("StateMachineType", "STANDARD"),
        }
        if p.get("TracingConfiguration"):
            args["tracingConfiguration"] = {"enabled": _bool(p["TracingConfiguration"].get("Enabled", False))}
        arn = self.client("stepfunctions").create_state_machine(**args)["stateMachineArn"]
        return Deployed(logical_id, "AWS::StepFunctions::StateMachine", arn, {"Arn": arn, "Name": name})

    # --- HTTP API (served by the local API gateway, not by moto) -----------------------------------

    def _http_api(self, logical_id: str, p: dict[str, Any]) -> Deployed:
        api_id = secrets.token_hex(5)
        api = HttpApi(logical_id, api_id)
        body = p.get("Body") or {}
        schemes = (body.get("components") or {}).get("securitySchemes") or {}
        for name, scheme in schemes.items():
            config = scheme.get("x-amazon-apigateway-authorizer") or {}
            if config.get("type") == "jwt":
                jwt_config = config.get("jwtConfiguration") or {}
                audience = jwt_config.get("audience") or []
                api.authorizers[name] = JwtAuthorizer(
                    name=name,
                    issuer=str(jwt_config.get("issuer", "")),
                    audience=[audience] if isinstance(audience, str) else list(audience),
                    identity_source=_first(config.get("identitySource", "$request.header.Authorization")),
                )
            else:
                log.debug("authorizer type not supported locally: %s (%s)", config.get("type"), name)
        for path, operations in (body.get("paths") or {}).items():
            for method, operation in operations.items():
                integration = (operation or {}).get("x-amazon-apigateway-integration") or {}
                uri = str(integration.get("uri", ""))
                if ":lambda:path/" not in uri:
                    continue
                if path == "$default" or method == "x-amazon-apigateway-any-method":
                    raise TemplateError(
                        f"{logical_id}: {method} {path} (ANY or $default) is not served locally"
                    )
                function_arn = uri.split("/functions/", 1)[1].rsplit("/invocations", 1)[0]
                authorizer, scopes = None, []
                for requirement in operation.get("security") or []:
                    for name, required_scopes in requirement.items():
                        if name != "NONE":
                            # An authorizer that is not a JWT one stays named: the local API then refuses
                            # the route (401) rather than serve it open.
                            authorizer, scopes = name, list(required_scopes or [])
                api.routes.append(Route(method.upper(), path, function_arn, authorizer, scopes))
        self.http_apis[logical_id] = api
        endpoint = self.api_url
        return Deployed(
            logical_id, "AWS::ApiGatewayV2::Api", api_id, {"ApiEndpoint": endpoint, "ApiId": api_id}
        )

    def _http_api_stage(self, logical_id: str, p: dict[str, Any]) -> Deployed:
        if p.get("StageName") != "$default":
            raise TemplateError(f"{logical_id}: only the $default stage is served locally")
        for api in self.http_apis.values():
            if api.api_id == p.get("ApiId"):
                api.default_throttle = _throttle(p.get("DefaultRouteSettings"))
                for route_key, settings in (p.get("RouteSettings") or {}).items():
                    throttle = _throttle(settings)
                    if throttle:
                        api.route_throttles[route_key] = throttle
        return Deployed(logical_id, "AWS::ApiGatewayV2::Stage", "$default")

    def _lambda_version(self, logical_id: str, p: dict[str, Any]) -> Deployed:
        version = self.client("lambda").publish_version(FunctionName=p["FunctionName"])
        arn = version["FunctionArn"]
        return Deployed(logical_id, "AWS::Lambda::Version", arn, {"Version": version["Version"]})

    def _lambda_alias(self, logical_id: str, p: dict[str, Any]) -> Deployed:
        alias = self.client("lambda").create_alias(
            FunctionName=p["FunctionName"], Name=p["Name"], FunctionVersion=str(p["FunctionVersion"])
        )
        return Deployed(logical_id, "AWS::Lambda::Alias", alias["AliasArn"])

    # --- SES ---------------------------------------------------------------------------------------

    def _ses_email_identity(self, logical_id: str, p: dict[str, Any]) -> Deployed:
        identity = p["EmailIdentity"]
        verify_ses_identity(self.client("ses"), identity)
        return Deployed(logical_id, "AWS::SES::EmailIdentity", identity)

    # --- AppConfig (the parts moto lacks are served by tidings_local.stack.appconfig) ----------------

    def _appconfig_application(self, logical_id: str, p: dict[str, Any]) -> Deployed:
        name = p.get("Name") or self.physical_name(logical_id, 64)
        app = self.client("appconfig").create_application(Name=name, Description=p.get("Description", ""))
        return Deployed(logical_id, "AWS::AppConfig::Application", app["Id"], {"ApplicationId": app["Id"]})

    def _appconfig_environment(self, logical_id: str, p: dict[str, Any]) -> Deployed:
        env = self.client("appconfig").create_environment(
            ApplicationId=p["ApplicationId"], Name=p["Name"], Description=p.get("Description", "")
        )
        return Deployed(logical_id, "AWS::AppConfig::Environment", env["Id"], {"EnvironmentId": env["Id"]})

    def _appconfig_profile(self, logical_id: str, p: dict[str, Any]) -> Deployed:
        args = {k: p[k] for k in ("Description", "Validators", "Type") if k in p}
        profile = self.client("appconfig").create_configuration_profile(
            ApplicationId=p["ApplicationId"], Name=p["Name"], LocationUri=p["LocationUri"], **args
        )
        attrs = {"ConfigurationProfileId": profile["Id"]}
        return Deployed(logical_id, "AWS::AppConfig::ConfigurationProfile", profile["Id"], attrs)

    def _appconfig_hosted_version(self, logical_id: str, p: dict[str, Any]) -> Deployed:
        content = p["Content"] if isinstance(p["Content"], str) else json.dumps(p["Content"])
        args = {k: p[k] for k in ("Description", "VersionLabel") if k in p}
        version = self.client("appconfig").create_hosted_configuration_version(
            ApplicationId=p["ApplicationId"],
            ConfigurationProfileId=p["ConfigurationProfileId"],
            Content=content.encode(),
            ContentType=p["ContentType"],
            **args,
        )["VersionNumber"]
        return Deployed(logical_id, "AWS::AppConfig::HostedConfigurationVersion", str(version))

    def _appconfig_strategy(self, logical_id: str, p: dict[str, Any]) -> Deployed:
        strategy = self.client("appconfig").create_deployment_strategy(
            Name=p["Name"],
            DeploymentDurationInMinutes=int(p["DeploymentDurationInMinutes"]),
            FinalBakeTimeInMinutes=int(p.get("FinalBakeTimeInMinutes", 0)),
            GrowthFactor=float(p["GrowthFactor"]),
            GrowthType=p.get("GrowthType", "LINEAR"),
            ReplicateTo=p["ReplicateTo"],
        )
        return Deployed(
            logical_id, "AWS::AppConfig::DeploymentStrategy", strategy["Id"], {"Id": strategy["Id"]}
        )

    def _appconfig_deployment(self, logical_id: str, p: dict[str, Any]) -> Deployed:
        deployment = self.client("appconfig").start_deployment(
            ApplicationId=p["ApplicationId"],
            EnvironmentId=p["EnvironmentId"],
            DeploymentStrategyId=p["DeploymentStrategyId"],
            ConfigurationProfileId=p["ConfigurationProfileId"],
            ConfigurationVersion=str(p["ConfigurationVersion"]),
            Description=p.get("Description", ""),
        )
        return Deployed(logical_id, "AWS::AppConfig::Deployment", str(deployment["DeploymentNumber"]))

    # --- observability and the rest ----------------------------------------------------------------

    def _alarm(self, logical_id: str, p: dict[str, Any]) -> Deployed:
        name = p.get("AlarmName") or self.physical_name(logical_id, 255)
        args = {k: v for k, v in p.items() if k != "AlarmName"}
        for key in ("Period", "EvaluationPeriods", "DatapointsToAlarm"):
            if key in args:
                args[key] = int(args[key])
        if "Threshold" in args:
            args["Threshold"] = float(args["Threshold"])
        if "ActionsEnabled" in args:
            args["ActionsEnabled"] = _bool(args["ActionsEnabled"])
        self.client("cloudwatch").put_metric_alarm(AlarmName=name, **_numbers(args))
        arn = f"arn:aws:cloudwatch:{REGION}:{ACCOUNT_ID}:alarm:{name}"
        return Deployed(logical_id, "AWS::CloudWatch::Alarm", name, {"Arn": arn})

    def _dashboard(self, logical_id: str, p: dict[str, Any]) -> Deployed:
        name = p.get("DashboardName") or self.physical_name(logical_id, 255)
        body = p["DashboardBody"]
        self.client("cloudwatch").put_dashboard(
            DashboardName=name, DashboardBody=body if isinstance(body, str) else json.dumps(body)
        )
        return Deployed(logical_id, "AWS::CloudWatch::Dashboard", name)

    def _log_group(self, logical_id: str, p: dict[str, Any]) -> Deployed:
        name = p.get("LogGroupName") or f"/{self.template.stack_name}/{logical_id}"
        logs = self.client("logs")
        logs.create_log_group(logGroupName=name)
        if p.get("RetentionInDays"):
            logs.put_retention_policy(logGroupName=name, retentionInDays=int(p["RetentionInDays"]))
        arn = f"arn:aws:logs:{REGION}:{ACCOUNT_ID}:log-group:{name}:*"
        return Deployed(logical_id, "AWS::Logs::LogGroup", name, {"Arn": arn})

    HANDLERS: dict[str, Callable[[Deployer, str, dict[str, Any]], Deployed]] = {
        "AWS::DynamoDB::Table": _dynamodb_table,
        "AWS::SQS::Queue": _sqs_queue,
        "AWS::SNS::Topic": _sns_topic,
        "AWS::SNS::Subscription": _sns_subscription,
        "AWS::SecretsManager::Secret": _secret,
        "AWS::IAM::Role": _iam_role,
        "AWS::Lambda::LayerVersion": _layer_version,
        "AWS::Lambda::Function": _lambda_function,
        "AWS::Lambda::EventSourceMapping": _event_source_mapping,
        "AWS::Lambda::Version": _lambda_version,
        "AWS::Lambda::Alias": _lambda_alias,
        "AWS::SES::EmailIdentity": _ses_email_identity,
        "AWS::StepFunctions::StateMachine": _state_machine,
        "AWS::ApiGatewayV2::Api": _http_api,
        "AWS::ApiGatewayV2::Stage": _http_api_stage,
        "AWS::CloudWatch::Alarm": _alarm,
        "AWS::CloudWatch::Dashboard": _dashboard,
        "AWS::Logs::LogGroup": _log_group,
        "AWS::Events::EventBus": _event_bus,
        "AWS::AppConfig::Application": _appconfig_application,
        "AWS::AppConfig::Environment": _appconfig_environment,
        "AWS::AppConfig::ConfigurationProfile": _appconfig_profile,
        "AWS::AppConfig::HostedConfigurationVersion": _appconfig_hosted_version,
        "AWS::AppConfig::DeploymentStrategy": _appconfig_strategy,
        "AWS::AppConfig::Deployment": _appconfig_deployment,
    }


def verify_ses_identity(ses: Any, identity: str) -> None:
    """Mark an address or domain verified in moto's SES (on AWS, the owner clicks a link or adds DNS)."""
    if "@" in identity:
        ses.verify_email_identity(EmailAddress=identity)
    else:
        ses.verify_domain_identity(Domain=identity)


def _bool(value: Any) -> bool:
    return value if isinstance(value, bool) else str(value).lower() == "true"


def _first(value: Any) -> str:
    return value[0] if isinstance(value, list) and value else str(value)


_NUMERIC_KEYS = {"Period", "EvaluationPeriods", "DatapointsToAlarm"}  # alarms, metric math included


def _numbers(value: Any) -> Any:
    """CloudFormation accepts numbers as strings; the service APIs do not."""
    if isinstance(value, dict):
        return {
            k: (int(v) if k in _NUMERIC_KEYS else _numbers(v)) for k, v in value.items() if v is not NO_VALUE
        }
    if isinstance(value, list):
        return [_numbers(v) for v in value]
    return value
