"""Local Lambda containers forked from one process that has already imported the heavy libraries.

A container's cold start is mostly importing boto3, botocore, pydantic, httpx and Powertools: about a
CPU-second each time, and a local system starts hundreds of containers in one test run. The fork server
(``python -m tidings_local.stack.forkserver``, one per ``LambdaRuntime``) imports those once, then forks
a container per request: the child takes the pipes the pool made for it, replaces its environment with
the function's, and runs ``worker.main`` exactly as a freshly started worker would. The project's own
code (the layer, the handler) is imported only in the child, after its environment is in place, so
module-level settings and clients still see the function's variables.

Only libraries that read no environment at import time are preloaded. ``ForkedProcess`` gives the pool
what it used from ``subprocess.Popen``: pid, the three streams, ``poll``, ``wait`` and ``kill``; the fork
server reports each child's exit status, as it is the one that can wait for it.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from typing import IO, Any

#: Imported once in the fork server: what every handler imports, none of it reading the environment when
#: imported (boto3 and Powertools read it when a session, client, Logger or Metrics is created).
PRELOAD = (
    "boto3",
    "botocore.session",
    "botocore.client",
    "botocore.httpsession",
    "pydantic",
    "httpx",
    "aws_lambda_powertools",
    "aws_lambda_powertools.utilities.parser",
    "aws_lambda_powertools.utilities.typing",
    "tidings_local.stack.worker",
)

_MESSAGE_BYTES = 1 << 20


# --- the fork server process -------------------------------------------------------------------------


def serve(control: socket.socket) -> None:
    for name in PRELOAD:
        importlib.import_module(name)
    wakeup_r, wakeup_w = os.pipe()
    os.set_blocking(wakeup_w, False)
    signal.set_wakeup_fd(wakeup_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the runtime closes the control socket to stop us
    control.sendmsg([json.dumps({"ready": True}).encode()])
    while True:
        try:
            readable, _, _ = select.select([control, wakeup_r], [], [])
        except InterruptedError:  # pragma: no cover - PEP 475 retries select
            continue
        if wakeup_r in readable:
            os.read(wakeup_r, 4096)
            _report_exits(control)
        if control in readable:
            message, fds, _, _ = socket.recv_fds(control, _MESSAGE_BYTES, 3)
            if not message:  # the runtime is gone: its containers end when their stdin closes
                return
            request = json.loads(message)
            pid = os.fork()
            if pid == 0:
                control.close()
                os.close(wakeup_r)
                os.close(wakeup_w)
                _become_container(request, fds)  # never returns
            for fd in fds:
                os.close(fd)
            control.sendmsg([json.dumps({"id": request["id"], "pid": pid}).encode()])


def _report_exits(control: socket.socket) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        exited = {"exited": pid, "code": os.waitstatus_to_exitcode(status)}
        with contextlib.suppress(OSError):
            control.sendmsg([json.dumps(exited).encode()])


def _become_container(request: dict[str, Any], fds: list[int]) -> None:
    code = 1
    try:
        signal.set_wakeup_fd(-1)
        for signum in (signal.SIGCHLD, signal.SIGINT):
            signal.signal(signum, signal.SIG_DFL)
        for target, fd in enumerate(fds):  # stdin, stdout, stderr
            os.dup2(fd, target)
            os.close(fd)
        sys.stdin = open(0, encoding="utf-8", closefd=False)  # noqa: SIM115 - the process's own stdin
        sys.stdout = open(1, "w", buffering=1, encoding="utf-8", closefd=False)  # noqa: SIM115
        sys.stderr = open(2, "w", buffering=1, encoding="utf-8", closefd=False)  # noqa: SIM115
        os.environ.clear()
        os.environ.update(request["env"])
        time.tzset()
        os.chdir(request["cwd"])
        sys.path[0] = request["cwd"]
        from tidings_local.stack import worker

        code = worker.main(["worker", *request["args"]])
    except BaseException:  # whatever happens, this process must not return to the fork server loop
        import traceback

        traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


# --- the runtime's side --------------------------------------------------------------------------------


class ForkedProcess:
    """A container forked by the fork server, with the part of ``subprocess.Popen`` the pool uses."""

    def __init__(self, pid: int, stdin: IO[str], stdout: IO[str], stderr: IO[str]) -> None:
        self.pid = pid
        self.stdin, self.stdout, self.stderr = stdin, stdout, stderr
        self.returncode: int | None = None
        self._exited = threading.Event()

    def _set_exit(self, code: int) -> None:
        self.returncode = code
        self._exited.set()

    def poll(self) -> int | None:
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if not self._exited.wait(timeout):
            raise subprocess.TimeoutExpired(f"container {self.pid}", timeout or 0)
        assert self.returncode is not None
        return self.returncode

    def kill(self) -> None:
        if self.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)


class ForkServer:
    """One fork server process and the thread that reads its answers."""

    def __init__(self, env: Mapping[str, str]) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self._control = ours
        self._process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "tidings_local.stack.forkserver", str(theirs.fileno())],
            pass_fds=[theirs.fileno()],
            env=dict(env),
            stdin=subprocess.DEVNULL,
        )
        theirs.close()
        self._lock = threading.Lock()
        self._next_id = 0
        self._forked: dict[int, int | None] = {}  # request id -> pid once answered (None: server gone)
        self._answers = threading.Condition(self._lock)
        self._children: dict[int, ForkedProcess] = {}
        self._early_exits: dict[int, int] = {}
        ready = ours.recv(_MESSAGE_BYTES)
        if not ready:
            raise RuntimeError("the fork server exited while starting")
        threading.Thread(target=self._read, daemon=True, name="forkserver").start()

    def spawn(self, args: list[str], env: Mapping[str, str], cwd: str) -> ForkedProcess:
        stdin_r, stdin_w = os.pipe()
        stdout_r, stdout_w = os.pipe()
        stderr_r, stderr_w = os.pipe()
        with self._lock:
            self._next_id += 1
            request_id = self._next_id
        request = {"id": request_id, "args": args, "env": dict(env), "cwd": cwd}
        try:
            socket.send_fds(self._control, [json.dumps(request).encode()], [stdin_r, stdout_w, stderr_w])
        finally:
            for fd in (stdin_r, stdout_w, stderr_w):
                os.close(fd)
        with self._answers:
            while request_id not in self._forked:
                if not self._answers.wait(timeout=60):
                    raise RuntimeError("the fork server did not answer")
            pid = self._forked.pop(request_id)
            if pid is None:
                raise RuntimeError("the fork server has stopped")
            process = ForkedProcess(
                pid,
                open(stdin_w, "w", buffering=1, encoding="utf-8"),  # noqa: SIM115 - owned by the process
                open(stdout_r, encoding="utf-8"),  # noqa: SIM115
                open(stderr_r, encoding="utf-8"),  # noqa: SIM115
            )
            self._children[pid] = process
            if pid in self._early_exits:
                process._set_exit(self._early_exits.pop(pid))
        return process

    def _read(self) -> None:
        while True:
            try:
                message = self._control.recv(_MESSAGE_BYTES)
            except OSError:
                message = b""
            if not message:
                with self._answers:
                    for request_id in range(1, self._next_id + 1):
                        self._forked.setdefault(request_id, None)
                    for child in self._children.values():
                        child._set_exit(-signal.SIGKILL)
                    self._answers.notify_all()
                return
            answer = json.loads(message)
            with self._answers:
                if "exited" in answer:
                    child = self._children.pop(answer["exited"], None)
                    if child is None:
                        self._early_exits[answer["exited"]] = answer["code"]
                    else:
                        child._set_exit(answer["code"])
                else:
                    self._forked[answer["id"]] = answer["pid"]
                    self._answers.notify_all()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._control.shutdown(socket.SHUT_RDWR)
        self._control.close()
        try:
            self._process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._process.kill()


if __name__ == "__main__":
    serve(socket.socket(fileno=int(sys.argv[1])))
