"""The path an execution took through the state machine, from its history: what the console's graph
colours, and what ``tidings executions show`` prints.

Each state on the path carries its input and output (redacted) and is one of: ``succeeded`` (left
without an error), ``retried`` (a task failed and was scheduled again, then succeeded), ``caught`` (left
on an error a Catch handled), ``failed`` (the execution failed in it), or ``running`` (not left yet).
"""

from __future__ import annotations

from typing import Any


def state_path(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    path: list[dict[str, Any]] = []
    current: dict[str, Any] | None = None
    pending_error: str | None = None
    for event in sorted(history, key=lambda e: e.get("id", 0)):
        kind = event.get("type", "")
        if kind.endswith("StateEntered"):
            name = event.get("stateEnteredEventDetails", {}).get("name")
            current = {
                "state": name,
                "type": kind.removesuffix("StateEntered"),
                "status": "running",
                "retries": 0,
                "errors": [],
                "entered": _iso(event.get("timestamp")),
                "exited": None,
                "input": _data(event.get("stateEnteredEventDetails", {}).get("input")),
                "output": None,
            }
            path.append(current)
            pending_error = None
        elif kind == "TaskScheduled" and current is not None and pending_error:
            current["retries"] += 1
            pending_error = None
        elif kind in ("TaskFailed", "TaskTimedOut", "LambdaFunctionFailed", "LambdaFunctionTimedOut"):
            detail = next((value for key, value in event.items() if key.endswith("EventDetails")), {})
            pending_error = detail.get("error") or "States.TaskFailed"
            if current is not None:
                current["errors"].append(pending_error)
        elif kind.endswith("StateExited") and current is not None:
            current["exited"] = _iso(event.get("timestamp"))
            current["output"] = _data(event.get("stateExitedEventDetails", {}).get("output"))
            if pending_error:
                current["status"] = "caught"
                current["caught"] = pending_error
            else:
                current["status"] = "retried" if current["retries"] else "succeeded"
            pending_error = None
        elif (
            kind in ("ExecutionFailed", "ExecutionTimedOut", "ExecutionAborted")
            and current is not None
            and current["status"] == "running"
        ):
            current["status"] = "failed"
            detail = next((value for key, value in event.items() if key.endswith("EventDetails")), {})
            if detail.get("error"):
                current["errors"].append(detail["error"])
    return path


def _data(text: str | None) -> Any:
    """A state's input or output, parsed and redacted (it carries ids, but a result may hold more)."""
    import json

    from tidings.observability import redact

    if text is None:
        return None
    try:
        return redact(json.loads(text))
    except ValueError:
        return redact(text)


def _iso(value: Any) -> str | None:
    from tidings_ops.operations import iso

    return iso(value)
