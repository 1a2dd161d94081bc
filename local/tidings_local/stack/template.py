"""Read a SAM template the way CloudFormation would see it after the SAM transform.

``load_template`` parses template.yaml, points local artifact paths (CodeUri, DefinitionUri, ...) at
placeholders the transform accepts, runs the real SAM transform (``samtranslator``, the library behind
``sam deploy``) and returns the plain CloudFormation resources together with the local folders/files
those placeholders stand for. ``Resolver`` evaluates CloudFormation intrinsics (Ref, GetAtt, Sub, Join,
If, ...) against parameters and the physical ids of resources deployed so far.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REGION = "us-east-1"
ACCOUNT_ID = "123456789012"  # moto's default account
ARTIFACT_BUCKET = "tidings-local-artifacts"


class TemplateError(Exception):
    """The template (or a parameter override) cannot be deployed locally; the message says why."""


class _NoValue:
    """``AWS::NoValue``: the property it stands in is removed."""

    def __repr__(self) -> str:
        return "AWS::NoValue"


NO_VALUE = _NoValue()


@dataclass
class Template:
    """A transformed template: plain CloudFormation plus where its local artifacts live."""

    path: Path
    sam: dict[str, Any]  # the template as written (after parameter defaults), for reference
    cfn: dict[str, Any]  # after the SAM transform
    parameters: dict[str, Any]  # resolved parameter values (defaults + overrides)
    stack_name: str
    # logical id -> local folder/file that a placeholder S3 location stands for
    code_dirs: dict[str, Path] = field(default_factory=dict)
    definition_files: dict[str, Path] = field(default_factory=dict)

    @property
    def base_dir(self) -> Path:
        return self.path.parent

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        return self.cfn.get("Resources", {})

    def functions(self) -> dict[str, dict[str, Any]]:
        return {lid: r for lid, r in self.resources.items() if r.get("Type") == "AWS::Lambda::Function"}


def parse_yaml(text: str) -> dict[str, Any]:
    """Parse CloudFormation YAML (short-form intrinsics such as !Ref and !GetAtt included)."""
    from samtranslator.yaml_helper import yaml_parse

    return yaml_parse(text)


def parse_parameter_overrides(values: list[str] | None) -> dict[str, str]:
    """``Key=Value`` pairs, as ``sam --parameter-overrides`` reads them (or ParameterKey=,ParameterValue=)."""
    overrides: dict[str, str] = {}
    for raw in values or []:
        for item in _split_overrides(raw):
            if item.startswith("ParameterKey="):
                parts = dict(p.split("=", 1) for p in item.split(","))
                overrides[parts["ParameterKey"]] = parts.get("ParameterValue", "")
                continue
            if "=" not in item:
                raise TemplateError(f"parameter override {item!r} is not Key=Value")
            key, value = item.split("=", 1)
            overrides[key.strip()] = value.strip().strip('"')
    return overrides


def _split_overrides(raw: str) -> list[str]:
    # Space-separated Key=Value pairs; quoted values may contain spaces.
    return [m.group(0) for m in re.finditer(r'[^\s"]+(?:"[^"]*")?[^\s"]*', raw)]


def load_template(
    path: str | Path,
    parameter_overrides: Mapping[str, Any] | None = None,
    stack_name: str = "tidings-local",
) -> Template:
    """Parse, validate parameters and SAM-transform ``path`` into plain CloudFormation."""
    path = Path(path).resolve()
    if not path.is_file():
        raise TemplateError(f"template not found: {path}")
    sam = parse_yaml(path.read_text())
    parameters = _parameter_values(sam.get("Parameters") or {}, dict(parameter_overrides or {}))
    prepared = copy.deepcopy(sam)
    code_dirs, definition_files = _replace_local_artifacts(prepared, path.parent)
    cfn = _sam_transform(prepared, parameters, stack_name) if "Transform" in prepared else prepared
    return Template(
        path=path,
        sam=sam,
        cfn=cfn,
        parameters=parameters,
        stack_name=stack_name,
        code_dirs=code_dirs,
        definition_files=definition_files,
    )


def _parameter_values(declared: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(overrides) - set(declared))
    if unknown:
        raise TemplateError(f"parameter overrides not declared in the template: {', '.join(unknown)}")
    values: dict[str, Any] = {}
    for name, spec in declared.items():
        if name in overrides:
            value = str(overrides[name])
        elif "Default" in spec:
            value = spec["Default"]
        else:
            raise TemplateError(f"parameter {name} has no Default: pass it with --parameter-overrides")
        value = _coerce_parameter(name, spec, value)
        values[name] = value
    return values


def _coerce_parameter(name: str, spec: dict[str, Any], value: Any) -> Any:
    kind = spec.get("Type", "String")
    if kind == "CommaDelimitedList" or kind.startswith("List<"):
        items = value if isinstance(value, list) else [v.strip() for v in str(value).split(",")]
        return [str(v) for v in items]
    text = str(value).lower() if isinstance(value, bool) else str(value)
    if kind == "Number":
        try:
            float(text)
        except ValueError:
            raise TemplateError(f"parameter {name} must be a number, got {text!r}") from None
    allowed = spec.get("AllowedValues")
    if allowed and text not in [str(a) for a in allowed]:
        raise TemplateError(f"parameter {name} must be one of {allowed}, got {text!r}")
    pattern = spec.get("AllowedPattern")
    if pattern and not re.fullmatch(pattern, text):
        raise TemplateError(f"parameter {name} must match {pattern}, got {text!r}")
    return text


# Properties holding a local path that `sam build`/`sam package` would upload.
_CODE_PROPERTIES = {
    "AWS::Serverless::Function": "CodeUri",
    "AWS::Serverless::LayerVersion": "ContentUri",
    "AWS::Lambda::LayerVersion": "Content",
    "AWS::Lambda::Function": "Code",
}
_DEFINITION_PROPERTIES = {
    "AWS::Serverless::StateMachine": "DefinitionUri",
    "AWS::StepFunctions::StateMachine": "DefinitionS3Location",
}


def _is_local(value: Any) -> bool:
    return isinstance(value, str) and not value.startswith("s3://")


def _replace_local_artifacts(template: dict[str, Any], base: Path) -> tuple[dict[str, Path], dict[str, Path]]:
    """Swap local paths for S3 placeholders (the transform only accepts S3) and remember them."""
    code_dirs: dict[str, Path] = {}
    definitions: dict[str, Path] = {}
    global_code = (template.get("Globals") or {}).get("Function", {}).get("CodeUri")
    for logical_id, resource in (template.get("Resources") or {}).items():
        kind = resource.get("Type")
        props = resource.setdefault("Properties", {})
        if kind in _CODE_PROPERTIES:
            key = _CODE_PROPERTIES[kind]
            value = props.get(key, global_code if kind == "AWS::Serverless::Function" else None)
            if _is_local(value):
                code_dirs[logical_id] = (base / value).resolve()
                props[key] = f"s3://{ARTIFACT_BUCKET}/{value}"
                if kind.startswith("AWS::Lambda::"):
                    props[key] = {"S3Bucket": ARTIFACT_BUCKET, "S3Key": value}
        if kind in _DEFINITION_PROPERTIES:
            key = _DEFINITION_PROPERTIES[kind]
            value = props.get(key)
            if _is_local(value):
                definitions[logical_id] = (base / value).resolve()
                props[key] = f"s3://{ARTIFACT_BUCKET}/{value}"
                if kind == "AWS::StepFunctions::StateMachine":
                    props[key] = {"Bucket": ARTIFACT_BUCKET, "Key": value}
        if kind in ("AWS::Serverless::HttpApi", "AWS::Serverless::Api") and _is_local(
            props.get("DefinitionUri")
        ):
            # An OpenAPI file: inline it, the transform then treats it like DefinitionBody.
            props["DefinitionBody"] = parse_yaml((base / props.pop("DefinitionUri")).read_text())
    if _is_local(global_code):
        template["Globals"]["Function"]["CodeUri"] = f"s3://{ARTIFACT_BUCKET}/{global_code}"
    return code_dirs, definitions


def _sam_transform(template: dict[str, Any], parameters: dict[str, Any], stack_name: str) -> dict[str, Any]:
    import boto3
    from samtranslator.model.exceptions import InvalidDocumentException
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator

    values = {
        **parameters,
        "AWS::Region": REGION,
        "AWS::AccountId": ACCOUNT_ID,
        "AWS::Partition": "aws",
        "AWS::StackName": stack_name,
    }
    session = boto3.session.Session(region_name=REGION)
    translator = Translator(None, Parser(), boto_session=session)
    try:
        # Managed policies are only named, never looked up: IAM is not enforced locally.
        return translator.translate(template, values, get_managed_policy_map=dict)
    except InvalidDocumentException as exc:
        messages = "; ".join(str(cause) for cause in exc.causes)
        raise TemplateError(f"the SAM transform rejected the template: {messages}") from exc


# --- intrinsic functions ---------------------------------------------------------------------------


def references(value: Any) -> set[str]:
    """Logical ids a fragment refers to (Ref, GetAtt, ${...} in Sub)."""
    found: set[str] = set()
    if isinstance(value, dict):
        if "Ref" in value and isinstance(value["Ref"], str):
            found.add(value["Ref"])
        if "Fn::GetAtt" in value:
            target = value["Fn::GetAtt"]
            found.add(target[0] if isinstance(target, list) else str(target).split(".", 1)[0])
        if "Fn::Sub" in value:
            sub = value["Fn::Sub"]
            text, variables = (sub[0], sub[1]) if isinstance(sub, list) else (sub, {})
            for name in _SUB_VAR.findall(text):
                if name not in variables:
                    found.add(name.split(".", 1)[0])
            found |= references(variables)
        for key, item in value.items():
            if key not in ("Ref", "Fn::GetAtt", "Fn::Sub"):
                found |= references(item)
    elif isinstance(value, list):
        for item in value:
            found |= references(item)
    return found


_SUB_VAR = re.compile(r"\$\{(?!!)([^}]+)\}")


class Resolver:
    """Evaluates intrinsics; ``ref``/``get_att`` callbacks answer for deployed resources."""

    def __init__(
        self,
        template: Template,
        ref: Callable[[str], Any],
        get_att: Callable[[str, str], Any],
    ) -> None:
        self.template = template
        self._ref = ref
        self._get_att = get_att
        self.pseudo = {
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT_ID,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": template.stack_name,
            "AWS::StackId": f"arn:aws:cloudformation:{REGION}:{ACCOUNT_ID}:stack/{template.stack_name}/local",
            "AWS::NotificationARNs": [],
            "AWS::NoValue": NO_VALUE,
        }
        self._conditions: dict[str, bool] = {}

    # Conditions are evaluated lazily and cached.
    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            spec = (self.template.cfn.get("Conditions") or {}).get(name)
            if spec is None:
                raise TemplateError(f"unknown condition {name}")
            self._conditions[name] = bool(self.resolve(spec))
        return self._conditions[name]

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            items = [self.resolve(v) for v in value]
            return [v for v in items if v is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (key, arg), *_ = value.items()
            handler = self._FUNCTIONS.get(key)
            # {"Condition": {...}} is data (e.g. in a policy); only {"Condition": "Name"} is the intrinsic.
            if handler is not None and not (key == "Condition" and not isinstance(arg, str)):
                return handler(self, arg)
        resolved = {k: self.resolve(v) for k, v in value.items()}
        return {k: v for k, v in resolved.items() if v is not NO_VALUE}

    def ref_value(self, name: str) -> Any:
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.template.parameters:
            return self.template.parameters[name]
        return self._ref(name)

    def _fn_ref(self, name: str) -> Any:
        return self.ref_value(name)

    def _fn_get_att(self, arg: Any) -> Any:
        logical_id, attribute = arg if isinstance(arg, list) else str(arg).split(".", 1)
        return self._get_att(logical_id, self.resolve(attribute))

    def _fn_sub(self, arg: Any) -> str:
        text, variables = (arg[0], self.resolve(arg[1])) if isinstance(arg, list) else (arg, {})

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in variables:
                return _to_text(variables[name])
            if "." in name and name.split(".", 1)[0] not in self.template.parameters:
                logical_id, attribute = name.split(".", 1)
                return _to_text(self._get_att(logical_id, attribute))
            return _to_text(self.ref_value(name))

        return _SUB_VAR.sub(replace, text).replace("${!", "${")

    def _fn_join(self, arg: list[Any]) -> str:
        delimiter, items = arg
        return delimiter.join(_to_text(v) for v in self.resolve(items))

    def _fn_select(self, arg: list[Any]) -> Any:
        index, items = self.resolve(arg)
        return items[int(index)]

    def _fn_split(self, arg: list[Any]) -> list[str]:
        delimiter, text = self.resolve(arg)
        return str(text).split(delimiter)

    def _fn_if(self, arg: list[Any]) -> Any:
        name, when_true, when_false = arg
        return self.resolve(when_true if self.condition(name) else when_false)

    def _fn_equals(self, arg: list[Any]) -> bool:
        left, right = self.resolve(arg)
        return _to_text(left) == _to_text(right)

    def _fn_not(self, arg: list[Any]) -> bool:
        return not self.resolve(arg[0])

    def _fn_and(self, arg: list[Any]) -> bool:
        return all(self.resolve(a) for a in arg)

    def _fn_or(self, arg: list[Any]) -> bool:
        return any(self.resolve(a) for a in arg)

    def _fn_condition(self, name: str) -> bool:
        return self.condition(name)

    def _fn_find_in_map(self, arg: list[Any]) -> Any:
        name, top, second = self.resolve(arg)[:3]
        return self.template.cfn["Mappings"][name][top][second]

    def _fn_get_azs(self, _arg: Any) -> list[str]:
        return [f"{REGION}{suffix}" for suffix in "abc"]

    def _fn_base64(self, arg: Any) -> str:
        import base64

        return base64.b64encode(_to_text(self.resolve(arg)).encode()).decode()

    def _fn_to_json_string(self, arg: Any) -> str:
        return json.dumps(self.resolve(arg), separators=(",", ":"))

    def _fn_import_value(self, arg: Any) -> Any:
        raise TemplateError(f"Fn::ImportValue {arg!r}: cross-stack imports are not available locally")

    _FUNCTIONS: dict[str, Callable[[Resolver, Any], Any]] = {
        "Ref": _fn_ref,
        "Fn::GetAtt": _fn_get_att,
        "Fn::Sub": _fn_sub,
        "Fn::Join": _fn_join,
        "Fn::Select": _fn_select,
        "Fn::Split": _fn_split,
        "Fn::If": _fn_if,
        "Fn::Equals": _fn_equals,
        "Fn::Not": _fn_not,
        "Fn::And": _fn_and,
        "Fn::Or": _fn_or,
        "Condition": _fn_condition,
        "Fn::FindInMap": _fn_find_in_map,
        "Fn::GetAZs": _fn_get_azs,
        "Fn::Base64": _fn_base64,
        "Fn::ToJsonString": _fn_to_json_string,
        "Fn::ImportValue": _fn_import_value,
    }


def _to_text(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def deployment_order(resources: Mapping[str, dict[str, Any]]) -> list[str]:
    """Logical ids so that every resource comes after the resources it refers to or DependsOn."""
    graph: dict[str, set[str]] = {}
    for logical_id, resource in resources.items():
        depends = resource.get("DependsOn") or []
        depends = [depends] if isinstance(depends, str) else list(depends)
        needed = references(resource.get("Properties") or {}) | set(depends)
        graph[logical_id] = {d for d in needed if d in resources and d != logical_id}
    order: list[str] = []
    state: dict[str, int] = {}

    def visit(node: str, trail: tuple[str, ...]) -> None:
        if state.get(node) == 2:
            return
        if state.get(node) == 1:
            raise TemplateError(f"circular dependency: {' -> '.join((*trail, node))}")
        state[node] = 1
        for dep in sorted(graph[node]):
            visit(dep, (*trail, node))
        state[node] = 2
        order.append(node)

    for node in resources:
        visit(node, ())
    return order
