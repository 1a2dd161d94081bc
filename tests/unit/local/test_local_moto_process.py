"""The moto process's garbage collection: a full collection walks only what is new since the last one."""

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.unit

#: Run in a process of its own: the policy changes the interpreter's collector for good.
_PROBE = """
import gc, json, weakref
from tidings_local.stack.moto_process import freeze_survivors_of_full_collections

class Node:
    pass

store = [Node() for _ in range(10_000)]  # what moto keeps: items, messages, executions
gc.collect()
walked_before = len(gc.get_objects(generation=2))
freeze_survivors_of_full_collections()
gc.collect()
walked_after = len(gc.get_objects(generation=2))
cycle = Node()
cycle.itself = cycle  # garbage in a cycle, made after the freeze
gone = weakref.ref(cycle)
del cycle
gc.collect()
print(json.dumps({
    "walked_before": walked_before,
    "walked_after": walked_after,
    "frozen": gc.get_freeze_count(),
    "cycle_collected": gone() is None,
    "store_alive": len(store),
}))
"""


def test_a_full_collection_freezes_its_survivors_and_newer_cycles_are_still_collected():
    # Given a process holding a store of long-lived objects, with the moto process's policy installed
    # When a full collection runs, and then garbage in a reference cycle is made and collected
    run = subprocess.run(
        [sys.executable, "-c", _PROBE], capture_output=True, text=True, check=True, timeout=60
    )
    seen = json.loads(run.stdout)
    # Then the store left the oldest generation (the next full collection does not walk it) without
    # being freed, and a cycle made afterwards is still collected
    assert seen["walked_before"] >= 10_000
    assert seen["walked_after"] == 0
    assert seen["frozen"] >= 10_000
    assert seen["store_alive"] == 10_000
    assert seen["cycle_collected"]
