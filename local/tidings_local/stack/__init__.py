"""The SAM template running locally: moto, worker "containers", SQS pollers, the HTTP API, a JWT issuer.

``from tidings_local.stack import LocalSystem`` is resolved lazily: the worker processes import this
package too and must not pay for moto and boto3 at their cold start.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tidings_local.stack.system import LocalSystem

__all__ = ["LocalSystem"]


def __getattr__(name: str) -> Any:
    if name == "LocalSystem":
        from tidings_local.stack.system import LocalSystem

        return LocalSystem
    raise AttributeError(name)
