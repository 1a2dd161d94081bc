"""Run Lambda functions locally without Docker: one worker process per "container", a pool per function.

Each worker (``worker.py``) is started with exactly the environment the template gives the function plus
what the Lambda service adds (AWS_REGION, AWS_LAMBDA_FUNCTION_NAME, fake credentials, AWS_ENDPOINT_URL
pointing at moto, ...). It imports the handler once (cold start) and then serves invocations one at a
time (warm), so module-level clients live exactly as long as they would in a Lambda container and two
functions never share ``os.environ``. Workers are forked from ``forkserver.py``, which has imported the
third-party libraries every handler uses once, so a local cold start costs the project's own imports.

``patches.install_moto_lambda_patch`` routes moto's Lambda ``Invoke`` (used by the Step Functions
interpreter and by boto3 clients talking to the moto server) to these pools.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tidings_local.stack.forkserver import ForkedProcess, ForkServer
from tidings_local.stack.template import ACCOUNT_ID, REGION

log = logging.getLogger(__name__)

LogSink = Callable[[str, str], None]  # (function logical id, log line)

# Variables the Lambda service sets itself; a template cannot override them.
_RESERVED = {
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_EXECUTION_ENV",
    "LAMBDA_TASK_ROOT",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
}


def stderr_sink(logical_id: str, line: str) -> None:
    sys.stderr.write(f"[{logical_id}] {line}\n")
    sys.stderr.flush()


# Lambda allows 10 s of init; a cold import on a busy 2-core machine gets more room before it counts as hung.
INIT_TIMEOUT_SECONDS = 60


# How long an answered invocation waits for its REPORT line on the log pipe.
REPORT_WAIT_SECONDS = 5


class InitFailed(Exception):
    """A container could not start (its process died or hung while importing the handler)."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message


class PoolClosed(RuntimeError):
    """The local Lambda runtime was stopped; no new invocation starts."""


@dataclass
class FunctionSpec:
    """What a local container needs to know about one deployed function."""

    logical_id: str
    function_name: str
    handler: str
    code_dir: Path
    environment: dict[str, str]  # exactly the template's (Globals + own), intrinsics resolved
    timeout: float = 3.0
    memory_mb: int = 128
    runtime: str = "python3.13"
    max_concurrency: int = 4

    @property
    def arn(self) -> str:
        return f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{self.function_name}"


@dataclass
class InvocationResult:
    payload: bytes
    error_type: str | None = None  # set when the function failed (x-amz-function-error)
    logs: str = ""
    request_id: str = ""
    cold_start: bool = False

    @property
    def failed(self) -> bool:
        return self.error_type is not None

    def json(self) -> Any:
        return json.loads(self.payload) if self.payload else None


@dataclass
class _Worker:
    process: subprocess.Popen[str] | ForkedProcess
    replies: queue.Queue[dict[str, Any] | None] = field(default_factory=queue.Queue)
    log_lines: list[str] = field(default_factory=list)
    invocations: int = 0
    generation: int = 0  # the pool's code generation it imported
    reported: threading.Event = field(default_factory=threading.Event)  # its last REPORT line was read


class FunctionPool:
    """Up to ``max_concurrency`` warm workers for one function; a new one only when all are busy."""

    def __init__(
        self,
        spec: FunctionSpec,
        base_env: Mapping[str, str],
        log_sink: LogSink,
        fork_server: Callable[[], ForkServer] | None = None,
    ) -> None:
        self.spec = spec
        self._fork_server = fork_server
        self._base_env = dict(base_env)
        self._log_sink = log_sink
        self._idle: list[_Worker] = []
        self._count = 0
        self._cond = threading.Condition()
        self._closed = False
        self._generation = 0
        self._busy: dict[int, _Worker] = {}  # the workers serving an invocation, by pid
        self.cold_starts = 0
        self.killed = 0

    def environment(self) -> dict[str, str]:
        spec = self.spec
        env = {k: v for k, v in spec.environment.items() if k not in _RESERVED}
        env.update(self._base_env)
        env.update(
            {
                "AWS_LAMBDA_FUNCTION_NAME": spec.function_name,
                "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
                "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec.function_name}",
                "AWS_LAMBDA_LOG_STREAM_NAME": f"local/[$LATEST]{uuid.uuid4().hex}",
                "AWS_EXECUTION_ENV": f"AWS_Lambda_{spec.runtime}",
                "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
                "LAMBDA_TASK_ROOT": str(spec.code_dir),
            }
        )
        return env

    def _start_process(self) -> subprocess.Popen[str] | ForkedProcess:
        args = [str(self.spec.code_dir), self.spec.handler]
        if self._fork_server is not None:
            return self._fork_server().spawn(args, self.environment(), str(self.spec.code_dir))
        return subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "tidings_local.stack.worker", *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=self.environment(),
            cwd=str(self.spec.code_dir),
            text=True,
            bufsize=1,
        )

    def _spawn(self) -> _Worker:
        process = self._start_process()
        worker = _Worker(process, generation=self._generation)
        threading.Thread(target=self._read_replies, args=(worker,), daemon=True).start()
        threading.Thread(target=self._read_logs, args=(worker,), daemon=True).start()
        try:
            ready = worker.replies.get(timeout=INIT_TIMEOUT_SECONDS)
        except queue.Empty:
            _kill(worker)
            raise InitFailed(
                "Sandbox.Timedout", f"Init phase took longer than {INIT_TIMEOUT_SECONDS} s"
            ) from None
        if ready is None:
            code = worker.process.wait()
            _kill(worker)
            raise InitFailed("Runtime.ExitError", f"Runtime exited during init with exit status {code}")
        self.cold_starts += 1
        return worker

    @staticmethod
    def _read_replies(worker: _Worker) -> None:
        assert worker.process.stdout is not None
        for line in worker.process.stdout:
            worker.replies.put(json.loads(line))
        worker.replies.put(None)  # the process ended

    def _read_logs(self, worker: _Worker) -> None:
        assert worker.process.stderr is not None
        for line in worker.process.stderr:
            line = line.rstrip("\n")
            worker.log_lines.append(line)
            self._log_sink(self.spec.logical_id, line)
            if line.startswith("REPORT RequestId:"):
                worker.reported.set()

    def _acquire(self) -> tuple[_Worker, bool]:
        with self._cond:
            while True:
                if self._closed:
                    raise PoolClosed(self.spec.logical_id)
                while self._idle:
                    worker = self._idle.pop()
                    if worker.process.poll() is None:
                        return worker, False
                    self._count -= 1  # died while idle (killed from outside): not a container to reuse
                    _kill(worker)
                if self._count < self.spec.max_concurrency:
                    self._count += 1
                    break
                self._cond.wait()
        try:
            return self._spawn(), True
        except BaseException:
            with self._cond:
                self._count -= 1
                self._cond.notify()
            raise

    def _release(self, worker: _Worker, healthy: bool) -> None:
        with self._cond:
            if healthy and not self._closed and worker.generation == self._generation:
                self._idle.append(worker)
            else:
                self._count -= 1
                _kill(worker)
            self._cond.notify()

    def invoke(self, event: Any, request_id: str | None = None) -> InvocationResult:
        request_id = request_id or str(uuid.uuid4())
        if self.spec.max_concurrency <= 0:
            # ReservedConcurrentExecutions: 0 switches a function off; Lambda throttles every call.
            message = "Rate Exceeded. (reserved concurrency is 0)"
            body = json.dumps({"errorType": "TooManyRequestsException", "errorMessage": message})
            return InvocationResult(body.encode(), "TooManyRequestsException", "", request_id)
        try:
            worker, cold = self._acquire()
        except InitFailed as exc:
            body = json.dumps(
                {"errorType": exc.error_type, "errorMessage": f"RequestId: {request_id} {exc.message}"}
            )
            return InvocationResult(body.encode(), exc.error_type, "", request_id, True)
        spec = self.spec
        deadline_ms = int((time.time() + spec.timeout) * 1000)
        request = {
            "event": event,
            "context": {
                "function_name": spec.function_name,
                "invoked_function_arn": spec.arn,
                "memory_limit_in_mb": spec.memory_mb,
                "aws_request_id": request_id,
                "log_group_name": f"/aws/lambda/{spec.function_name}",
                "log_stream_name": f"local/[$LATEST]{id(worker):x}",
                "deadline_ms": deadline_ms,
            },
        }
        worker.log_lines.clear()
        worker.reported.clear()
        healthy = True
        with self._cond:
            self._busy[worker.process.pid] = worker
        try:
            assert worker.process.stdin is not None
            worker.process.stdin.write(json.dumps(request) + "\n")
            worker.process.stdin.flush()
            reply = worker.replies.get(timeout=spec.timeout)
        except queue.Empty:
            healthy = False
            message = f"RequestId: {request_id} Error: Task timed out after {spec.timeout:.2f} seconds"
            reply = {"ok": False, "errorType": "Sandbox.Timedout", "errorMessage": message}
        except (BrokenPipeError, OSError):
            reply = None
        if reply is None:
            healthy = False
            code = worker.process.poll()
            message = f"RequestId: {request_id} Error: Runtime exited with error: exit status {code}"
            reply = {"ok": False, "errorType": "Runtime.ExitError", "errorMessage": message}
        if healthy:
            # The worker writes its REPORT line before its answer, but on another pipe: the invocation's
            # logs are complete once that line has been read too.
            worker.reported.wait(timeout=REPORT_WAIT_SECONDS)
        with self._cond:
            self._busy.pop(worker.process.pid, None)
        self._release(worker, healthy)
        worker.invocations += 1
        logs = "\n".join(worker.log_lines)
        if reply.get("ok"):
            return InvocationResult(reply["result"].encode(), None, logs, request_id, cold)
        body = {k: reply[k] for k in ("errorMessage", "errorType", "stackTrace") if k in reply}
        return InvocationResult(json.dumps(body).encode(), reply["errorType"], logs, request_id, cold)

    def kill_busy(self) -> int:
        """Kill every container in the middle of an invocation (SIGKILL, as a crashed or reclaimed
        Lambda host would): the invocation ends with ``Runtime.ExitError`` and the next one starts cold.
        A fault-injection lever for the chaos and crash tests; returns how many were killed."""
        with self._cond:
            victims = list(self._busy.values())
        for worker in victims:
            if worker.process.poll() is None:
                worker.process.kill()
        self.killed += len(victims)
        return len(victims)

    def recycle(self) -> None:
        """The code changed: idle containers go now, busy ones when their invocation ends."""
        with self._cond:
            self._generation += 1
            idle, self._idle = self._idle, []
            self._count -= len(idle)
            self._cond.notify_all()
        for worker in idle:
            _kill(worker)

    def warm(self, containers: int = 1) -> None:
        """Start ``containers`` (at most the pool's limit) ahead of the first request (sam's
        --warm-containers EAGER): each is held until all are up, so none is handed out twice."""
        held: list[_Worker] = []
        try:
            for _ in range(max(1, min(containers, self.spec.max_concurrency))):
                held.append(self._acquire()[0])
        except (InitFailed, PoolClosed):
            pass  # reported on the first real invocation, as Lambda would
        finally:
            for worker in held:
                self._release(worker, healthy=True)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            idle, self._idle = self._idle, []
            self._cond.notify_all()
        for worker in idle:
            _kill(worker)


def _kill(worker: _Worker) -> None:
    process = worker.process
    if process.poll() is None:
        process.kill()
    for stream in (process.stdin, process.stdout, process.stderr):
        try:
            if stream is not None:
                stream.close()
        except OSError:  # pragma: no cover - best effort during shutdown
            pass
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=5)


class LambdaRuntime:
    """Every deployed function's pool, addressable by name, ARN or logical id."""

    def __init__(
        self,
        moto_url: str,
        log_sink: LogSink = stderr_sink,
        max_concurrency: int = 4,
        fork_containers: bool = True,
    ) -> None:
        self.moto_url = moto_url
        # Containers forked from one process that imported the libraries once (forkserver.py), unless
        # TIDINGS_LOCAL_FORK=0 asks for a fresh interpreter per container, as before.
        self.fork_containers = fork_containers and os.environ.get("TIDINGS_LOCAL_FORK", "1") != "0"
        self._fork_server: ForkServer | None = None
        self._fork_server_lock = threading.Lock()
        self.max_concurrency = max_concurrency
        self.log_sink = log_sink
        self._pools: dict[str, FunctionPool] = {}
        self._by_logical_id: dict[str, FunctionPool] = {}
        self._stop_watching = threading.Event()
        self.base_env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "en_US.UTF-8",
            "TZ": ":UTC",
            "PYTHONUNBUFFERED": "1",
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_ENDPOINT_URL": moto_url,
            # Never read the developer's real AWS profile, nor ask an instance metadata service.
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
            # What `sam local` sets: Powertools Tracer turns itself off (no X-Ray daemon here).
            "AWS_SAM_LOCAL": "true",
        }

    def register(self, spec: FunctionSpec, extra_env: Mapping[str, str] | None = None) -> None:
        base = dict(self.base_env)
        spec.max_concurrency = min(spec.max_concurrency, self.max_concurrency)
        if extra_env:
            spec.environment = {**spec.environment, **{k: str(v) for k, v in extra_env.items()}}
        pool = FunctionPool(spec, base, self.log_sink, self._forks if self.fork_containers else None)
        self._pools[spec.function_name] = pool
        self._by_logical_id[spec.logical_id] = pool

    def _forks(self) -> ForkServer:
        with self._fork_server_lock:
            if self._fork_server is None:
                self._fork_server = ForkServer(self.base_env)
            return self._fork_server

    def pool(self, name_arn_or_logical_id: str) -> FunctionPool:
        key = name_arn_or_logical_id
        if key in self._by_logical_id:
            return self._by_logical_id[key]
        if key.startswith("arn:"):
            key = key.split(":")[6]
        if key not in self._pools:
            raise KeyError(f"no local function {name_arn_or_logical_id!r}")
        return self._pools[key]

    def has(self, name: str) -> bool:
        try:
            self.pool(name)
        except KeyError:
            return False
        return True

    @property
    def specs(self) -> dict[str, FunctionSpec]:
        return {lid: pool.spec for lid, pool in self._by_logical_id.items()}

    def invoke(self, name: str, event: Any) -> InvocationResult:
        return self.pool(name).invoke(event)

    def warm_all(self, parallel: int = 2, containers: int = 1) -> None:
        """``containers`` warm containers per function (at most its limit), a few functions at a time
        (cold imports are CPU-bound)."""
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="warm") as executor:
            list(executor.map(lambda pool: pool.warm(containers), list(self._pools.values())))

    def watch_code(self, extra_dirs: list[Path] | None = None, interval: float = 1.0) -> None:
        """Recycle a function's containers when a .py file under its code (or ``extra_dirs``) changes."""
        threading.Thread(target=self._watch, args=(list(extra_dirs or []), interval), daemon=True).start()

    def _watch(self, extra_dirs: list[Path], interval: float) -> None:
        shared = _newest_mtime(extra_dirs)
        own = {name: _newest_mtime([pool.spec.code_dir]) for name, pool in self._pools.items()}
        while not self._stop_watching.wait(interval):
            newest_shared = _newest_mtime(extra_dirs)
            shared_changed, shared = newest_shared > shared, max(shared, newest_shared)
            for name, pool in self._pools.items():
                newest = _newest_mtime([pool.spec.code_dir])
                if shared_changed or newest > own[name]:
                    own[name] = max(own[name], newest)
                    log.info("code changed, recycling containers of %s", pool.spec.logical_id)
                    pool.recycle()

    def close(self) -> None:
        self._stop_watching.set()
        for pool in self._pools.values():
            pool.close()
        with self._fork_server_lock:
            if self._fork_server is not None:
                self._fork_server.close()
                self._fork_server = None


def _newest_mtime(folders: list[Path]) -> float:
    newest = 0.0
    for folder in folders:
        for path in folder.rglob("*.py"):
            try:
                newest = max(newest, path.stat().st_mtime)
            except OSError:  # deleted while scanning
                continue
    return newest
