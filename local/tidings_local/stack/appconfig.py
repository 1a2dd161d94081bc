"""AppConfig on the moto server: what moto 5.2.5 lacks, added beside its own AppConfig routes.

moto implements AppConfig's applications, configuration profiles and hosted configuration versions, but
not environments, deployment strategies, deployments, the profile's validators, nor the data plane
(``appconfigdata``: StartConfigurationSession / GetLatestConfiguration) that Powertools'
``AppConfigProvider`` reads. This module serves those on the same server, so a function reaches the
local AppConfig exactly as it reaches AWS (through ``AWS_ENDPOINT_URL``, no local switch anywhere), and
``tidings config set`` deploys the same way on both.

Both AppConfig APIs sign requests as ``appconfig``, so moto hands them to its AppConfig backend; the
routes below are added to that backend's URL table (``patches.install_local_appconfig``), with the
content and the validators read from moto's own models. Deviations from AWS, on purpose: a deployment
completes at once whatever its strategy says (no rollout, no bake time), and the data plane does not
refuse polls closer together than the session's minimum interval (tests poll every second). A
deployment whose document fails a profile's JSON_SCHEMA validator is refused with
``BadRequestException``, as on AWS.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlparse

_APP = r"/applications/(?P<app>[^/]+)"
_ENV = _APP + r"/environments/(?P<env>[^/]+)"
#: moto's url_paths syntax: "{0}" is the base URL, the rest a regular expression of the path.
ROUTES = {
    "{0}" + _APP + "/environments$": "environments",
    "{0}" + _ENV + "$": "environment",
    "{0}/deploymentstrategies$": "strategies",
    "{0}/deploymentstrategies/(?P<strategy>[^/]+)$": "strategy",
    "{0}" + _ENV + "/deployments$": "deployments",
    "{0}" + _ENV + r"/deployments/(?P<number>\d+)$": "deployment",
    "{0}/configurationsessions$": "sessions",
    "{0}/configuration$": "configuration",
}
_CREDENTIAL_SCOPE = re.compile(r"Credential=[^/,\s]+/\d{8}/([^/,\s]+)/")


@dataclass
class _Environment:
    id: str
    app_id: str
    name: str
    description: str = ""
    deployments: list[dict[str, Any]] = field(default_factory=list)

    def view(self) -> dict[str, Any]:
        return {
            "ApplicationId": self.app_id,
            "Id": self.id,
            "Name": self.name,
            "Description": self.description,
            "State": "READY_FOR_DEPLOYMENT",
            "Monitors": [],
        }


@dataclass
class _Extra:
    """What moto's AppConfig backend does not keep, stored on it so that a moto reset clears it too."""

    environments: dict[str, _Environment] = field(default_factory=dict)
    strategies: dict[str, dict[str, Any]] = field(default_factory=dict)


class LocalAppConfig:
    """The routes' logic: environments, strategies and deployments, and the data plane, per region."""

    def __init__(self) -> None:
        self.lock = threading.Lock()

    def kept(self, region: str) -> _Extra:
        extra: _Extra = self.backend(region).__dict__.setdefault("_tidings_local_extra", _Extra())
        return extra

    # --- lookups ---------------------------------------------------------------------------------
    @staticmethod
    def backend(region: str) -> Any:
        from moto.appconfig.models import appconfig_backends
        from moto.core import DEFAULT_ACCOUNT_ID

        return appconfig_backends[DEFAULT_ACCOUNT_ID][region]

    def application(self, region: str, identifier: str) -> Any:
        applications = self.backend(region).applications
        for app in applications.values():
            if identifier in (app.id, app.name):
                return app
        raise _NotFound(f"application {identifier} not found")

    def environment(self, region: str, app_id: str, identifier: str) -> _Environment:
        for env in self.kept(region).environments.values():
            if env.app_id == app_id and identifier in (env.id, env.name):
                return env
        raise _NotFound(f"environment {identifier} not found")

    @staticmethod
    def profile(app: Any, identifier: str) -> Any:
        for profile in app.config_profiles.values():
            if identifier in (profile.id, profile.name):
                return profile
        raise _NotFound(f"configuration profile {identifier} not found")

    # --- the control plane moto lacks -------------------------------------------------------------
    def environments_route(self, region: str, method: str, body: dict[str, Any], match: Any) -> Any:
        app = self.application(region, match["app"])
        if method == "POST":
            env = _Environment(_id(), app.id, body["Name"], body.get("Description") or "")
            self.kept(region).environments[env.id] = env
            return 201, env.view()
        items = [e.view() for e in self.kept(region).environments.values() if e.app_id == app.id]
        return 200, {"Items": items}

    def environment_route(self, region: str, method: str, body: dict[str, Any], match: Any) -> Any:
        app = self.application(region, match["app"])
        return 200, self.environment(region, app.id, match["env"]).view()

    def strategies_route(self, region: str, method: str, body: dict[str, Any], match: Any) -> Any:
        if method == "POST":
            strategy = {"Id": _id(), **{k: v for k, v in body.items() if k != "Tags"}}
            self.kept(region).strategies[strategy["Id"]] = strategy
            return 201, strategy
        return 200, {"Items": list(self.kept(region).strategies.values())}

    def strategy_route(self, region: str, method: str, body: dict[str, Any], match: Any) -> Any:
        strategy = self.kept(region).strategies.get(match["strategy"])
        if strategy is None:
            raise _NotFound(f"deployment strategy {match['strategy']} not found")
        return 200, strategy

    def deployments_route(self, region: str, method: str, body: dict[str, Any], match: Any) -> Any:
        app = self.application(region, match["app"])
        env = self.environment(region, app.id, match["env"])
        if method != "POST":
            return 200, {"Items": [_summary(d) for d in reversed(env.deployments)]}
        profile = self.profile(app, body["ConfigurationProfileId"])
        strategy = self.kept(region).strategies.get(body["DeploymentStrategyId"])
        if strategy is None:
            raise _NotFound(f"deployment strategy {body['DeploymentStrategyId']} not found")
        version = profile.get_version(int(body["ConfigurationVersion"]))
        _check_validators(profile.validators, version.content)
        now = datetime.now(UTC).isoformat()
        deployment = {
            "ApplicationId": app.id,
            "EnvironmentId": env.id,
            "DeploymentStrategyId": strategy["Id"],
            "ConfigurationProfileId": profile.id,
            "DeploymentNumber": len(env.deployments) + 1,
            "ConfigurationName": profile.name,
            "ConfigurationLocationUri": profile.location_uri,
            "ConfigurationVersion": str(version.version),
            "Description": body.get("Description") or "",
            "DeploymentDurationInMinutes": strategy.get("DeploymentDurationInMinutes", 0),
            "GrowthType": strategy.get("GrowthType", "LINEAR"),
            "GrowthFactor": strategy.get("GrowthFactor", 100),
            "FinalBakeTimeInMinutes": strategy.get("FinalBakeTimeInMinutes", 0),
            "State": "COMPLETE",  # at once: no rollout here
            "EventLog": [],
            "PercentageComplete": 100.0,
            "StartedAt": now,
            "CompletedAt": now,
            "VersionLabel": version.version_label or "",
        }
        env.deployments.append(deployment)
        return 201, deployment

    def deployment_route(self, region: str, method: str, body: dict[str, Any], match: Any) -> Any:
        app = self.application(region, match["app"])
        env = self.environment(region, app.id, match["env"])
        number = int(match["number"])
        if not 1 <= number <= len(env.deployments):
            raise _NotFound(f"deployment {number} not found")
        return 200, env.deployments[number - 1]

    # --- the data plane (appconfigdata) -----------------------------------------------------------
    def sessions_route(self, region: str, method: str, body: dict[str, Any], match: Any) -> Any:
        app = self.application(region, body["ApplicationIdentifier"])
        env = self.environment(region, app.id, body["EnvironmentIdentifier"])
        profile = self.profile(app, body["ConfigurationProfileIdentifier"])
        interval = int(body.get("RequiredMinimumPollIntervalInSeconds") or 60)
        token = _token({"app": app.id, "env": env.id, "profile": profile.id, "seen": None, "poll": interval})
        return 201, {"InitialConfigurationToken": token}

    def configuration(self, region: str, token: str) -> tuple[int, dict[str, str], bytes]:
        try:
            session = json.loads(base64.urlsafe_b64decode(token.encode()))
        except ValueError:
            raise _BadRequest("invalid configuration token") from None
        app = self.application(region, session["app"])
        env = self.environment(region, app.id, session["env"])
        profile = self.profile(app, session["profile"])
        done = [d for d in env.deployments if d["ConfigurationProfileId"] == profile.id]
        headers = {"Next-Poll-Interval-In-Seconds": str(session["poll"])}
        content, content_type, seen, label = b"", "application/octet-stream", session["seen"], ""
        if done:
            version = profile.get_version(int(done[-1]["ConfigurationVersion"]))
            label = version.version_label or ""
            if seen != version.version:  # AppConfig sends the document only when it changed
                content = version.content.encode() if isinstance(version.content, str) else version.content
                content_type = version.content_type or "application/json"
            seen = version.version
        headers["Next-Poll-Configuration-Token"] = _token(session | {"seen": seen})
        headers["Content-Type"] = content_type
        if label:
            headers["Version-Label"] = label
        return 200, headers, content


class _NotFound(Exception):
    pass


class _BadRequest(Exception):
    pass


def _id() -> str:
    return uuid.uuid4().hex[:7]


def _token(session: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(session).encode()).decode()


def _summary(deployment: dict[str, Any]) -> dict[str, Any]:
    keys = ("DeploymentNumber", "ConfigurationName", "ConfigurationVersion", "State", "StartedAt")
    return {key: deployment[key] for key in (*keys, "CompletedAt", "PercentageComplete", "VersionLabel")}


def _check_validators(validators: list[dict[str, str]] | None, content: Any) -> None:
    """AppConfig runs a profile's JSON_SCHEMA validators when a deployment starts."""
    import jsonschema

    for validator in validators or []:
        if validator.get("Type") != "JSON_SCHEMA":
            continue
        try:
            document = json.loads(content)
        except ValueError:
            raise _BadRequest("the configuration is not valid JSON") from None
        try:
            jsonschema.validate(document, json.loads(validator["Content"]))
        except jsonschema.ValidationError as exc:
            where = "/".join(str(part) for part in exc.absolute_path) or "(document)"
            raise _BadRequest(f"the configuration failed the JSON Schema validator at {where}") from None


_STATE = LocalAppConfig()


def _handler(route: str) -> Any:
    pattern = next(re.compile(path.format("") + "$") for path, name in ROUTES.items() if name == route)

    def handle(request: Any, full_url: str, headers: dict[str, str]) -> Any:
        match = _CREDENTIAL_SCOPE.search(headers.get("Authorization", ""))
        region = match.group(1) if match else "us-east-1"
        url = urlparse(full_url)
        try:
            with _STATE.lock:
                if route == "configuration":
                    token = parse_qs(url.query).get("configuration_token", [""])[0]
                    return _STATE.configuration(region, token)
                body = json.loads(request.get_data() or b"{}")
                path_match = pattern.search(url.path)
                assert path_match is not None
                status, answer = getattr(_STATE, f"{route}_route")(
                    region, request.method, body, path_match.groupdict()
                )
        except _NotFound as exc:
            return _error(404, "ResourceNotFoundException", str(exc))
        except (_BadRequest, KeyError, ValueError) as exc:
            return _error(400, "BadRequestException", str(exc))
        return status, {"Content-Type": "application/json"}, json.dumps(answer)

    handle.__name__ = f"appconfig_{route}"
    return handle


def _error(status: int, code: str, message: str) -> tuple[int, dict[str, str], str]:
    return status, {"x-amzn-ErrorType": code}, json.dumps({"Message": message})


#: moto creates applications at this path but cannot list them (GET); the listing is added here.
APPLICATIONS = "{0}/applications$"


def handlers() -> dict[str, Any]:
    """moto url_paths entries (path -> handler) for every route above."""
    return {path: _handler(route) for path, route in ROUTES.items()}


def list_applications(moto_handler: Any) -> Any:
    """moto's handler of ``/applications``, with GET answered here (ListApplications)."""

    def applications(request: Any, full_url: str, headers: dict[str, str]) -> Any:
        if request.method != "GET":
            return moto_handler(request, full_url, headers)
        match = _CREDENTIAL_SCOPE.search(headers.get("Authorization", ""))
        backend = LocalAppConfig.backend(match.group(1) if match else "us-east-1")
        items = [app.to_json() for app in backend.applications.values()]
        return 200, {"Content-Type": "application/json"}, json.dumps({"Items": items})

    applications.__name__ = "appconfig_applications"
    return applications
