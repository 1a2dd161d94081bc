"""The local system's memory and CPU readings: a process and its descendants, sampled over a run."""

import os
import subprocess
import sys

import pytest

from tidings_local.stack.resources import TreeUsage, UsageSampler, descendants, tree_usage

pytestmark = pytest.mark.unit


@pytest.fixture
def child():
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield process
    process.kill()
    process.wait()


def test_a_tree_counts_this_process_and_its_children(child):
    # Given a child process
    # When this process's tree is read
    usage = tree_usage()
    # Then both are in it, each with its memory and CPU time
    usage_pid = os.getpid()
    assert child.pid in descendants(usage_pid)
    assert usage_pid in usage.cpu_seconds
    assert child.pid in usage.cpu_seconds
    assert usage.processes >= 2
    assert usage.rss_bytes >= usage.pss_bytes > 0


def test_the_peak_is_the_sample_holding_the_most_and_halves_are_read_apart():
    sampler = UsageSampler()
    sampler.samples = [TreeUsage(1, 10, 5), TreeUsage(1, 40, 30), TreeUsage(1, 20, 10), TreeUsage(1, 90, 8)]
    assert sampler.peak().pss_bytes == 30
    assert sampler.peak(0.5, 1.0).pss_bytes == 10  # the second half: 10 and 8
    assert sampler.peak(0.5, 1.0).rss_bytes == 20


def test_cpu_time_is_what_each_process_spent_between_the_first_and_last_sample():
    sampler = UsageSampler()
    sampler.samples = [
        TreeUsage(2, 0, 0, {1: 10.0, 2: 1.0}),
        TreeUsage(3, 0, 0, {1: 12.0, 2: 1.5, 3: 0.5}),  # 3 started during the run
        TreeUsage(2, 0, 0, {1: 13.0, 3: 2.0}),  # 2 ended: counted up to its last sample
    ]
    assert sampler.cpu_seconds() == pytest.approx(3.0 + 0.5 + 2.0)
    assert sampler.cpu_seconds({1}) == pytest.approx(3.0)


def test_a_sampler_reads_at_start_and_stop():
    sampler = UsageSampler(interval=60).start()
    sampler.stop()
    assert len(sampler.samples) == 2
    assert all(sample.pss_bytes > 0 for sample in sampler.samples)


def test_memory_is_read_back_by_the_processes_asked_for(child):
    usage = tree_usage()
    assert usage.pss_of({child.pid}) == usage.pss_by_pid[child.pid] > 0
    assert usage.pss_of(set(usage.pss_by_pid)) == usage.pss_bytes
    assert usage.pss_of(set()) == 0
