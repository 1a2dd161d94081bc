"""What the local system uses: the memory and CPU time of a process and all its descendants (the Lambda
workers forked by the fork server, moto's own process), read from /proc, and a sampler that keeps them
over a run (``make load``).

Forked workers share the fork server's pages copy-on-write, so the sum of their RSS counts those pages
once per worker; the sum of PSS (each shared page divided among its sharers) is what the tree really
holds. Both are reported. CPU time counts each process's own and that of the children it has reaped (a
worker that ended still counts, through the fork server). Linux only; elsewhere every reading is 0.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

_PROC = Path("/proc")
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclass(frozen=True)
class TreeUsage:
    processes: int
    rss_bytes: int
    pss_bytes: int
    #: CPU seconds (user + system) by process id, reaped children included.
    cpu_seconds: dict[int, float] = field(default_factory=dict, compare=False)
    #: PSS bytes by process id.
    pss_by_pid: dict[int, int] = field(default_factory=dict, compare=False)

    def pss_of(self, pids: set[int]) -> int:
        return sum(pss for pid, pss in self.pss_by_pid.items() if pid in pids)

    @property
    def cpu_total(self) -> float:
        return sum(self.cpu_seconds.values())


def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it, found through each process's parent in /proc/<pid>/stat."""
    children: dict[int, list[int]] = {}
    for entry in _PROC.glob("[0-9]*"):
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # ended while listing
            continue
        # The command name (field 2) is in parentheses and may hold spaces: the parent follows the last ")".
        parent = int(stat[stat.rindex(")") + 2 :].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def _one(pid: int) -> tuple[int, int, float] | None:
    try:
        rss = int((_PROC / str(pid) / "statm").read_text().split()[1]) * _PAGE
        stat = (_PROC / str(pid) / "stat").read_text()
    except (OSError, IndexError, ValueError):
        return None
    # Fields 14-17 (utime, stime, cutime, cstime), counted after the command name's closing parenthesis.
    times = stat[stat.rindex(")") + 2 :].split()[11:15]
    cpu = sum(int(value) for value in times) / _TICKS
    pss = rss
    try:
        for line in (_PROC / str(pid) / "smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                pss = int(line.split()[1]) * 1024
                break
    except (OSError, ValueError):
        pass  # no smaps_rollup (old kernel, or not allowed): RSS stands in
    return rss, pss, cpu


def tree_usage(pid: int | None = None) -> TreeUsage:
    """The memory and CPU time of ``pid`` (this process by default) and its descendants, now."""
    if not _PROC.is_dir():
        return TreeUsage(0, 0, 0)
    readings = {p: r for p in descendants(os.getpid() if pid is None else pid) if (r := _one(p)) is not None}
    return TreeUsage(
        len(readings),
        sum(r[0] for r in readings.values()),
        sum(r[1] for r in readings.values()),
        {p: r[2] for p, r in readings.items()},
        {p: r[1] for p, r in readings.items()},
    )


@dataclass
class UsageSampler:
    """Samples ``tree_usage(pid)`` every ``interval`` seconds in a thread, between ``start`` and ``stop``."""

    pid: int | None = None
    interval: float = 1.0
    samples: list[TreeUsage] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> UsageSampler:
        self.samples.append(tree_usage(self.pid))
        self._thread = threading.Thread(target=self._run, name="memory-sampler", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.samples.append(tree_usage(self.pid))

    def stop(self) -> UsageSampler:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self.samples.append(tree_usage(self.pid))
        return self

    def peak(self, first: float = 0.0, last: float = 1.0) -> TreeUsage:
        """The sample with the highest PSS among the part of the run from ``first`` to ``last`` (0..1)."""
        count = len(self.samples)
        part = self.samples[int(first * count) : max(int(first * count) + 1, int(last * count))]
        return max(part, key=lambda sample: sample.pss_bytes, default=TreeUsage(0, 0, 0))

    def cpu_seconds(self, pids: set[int] | None = None) -> float:
        """CPU time spent between the first and the last sample, by ``pids`` (all processes when None).

        A process that ended in between is counted up to its last sample (and, once reaped, in its
        parent's children's time)."""
        if not self.samples:
            return 0.0
        first, last = self.samples[0].cpu_seconds, {}
        for sample in self.samples:
            last.update(sample.cpu_seconds)
        return sum(
            seconds - first.get(pid, 0.0) for pid, seconds in last.items() if pids is None or pid in pids
        )
