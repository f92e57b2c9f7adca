"""The benchmark's CPU accounting (``scripts/benchmark/stack.py``): a process's figure counts its
children, including one that ended between two readings (redis-server's snapshot fork)."""

from __future__ import annotations

import subprocess
import sys

from .conftest import bench_module

stack = bench_module("stack")

# A parent that forks a child burning 0.6 s of CPU (saying so once it has burnt 0.2 s), waits for
# it, says so, then idles until it is killed. The lines order the readings whatever the load.
PARENT = """
import os, sys, time
pid = os.fork()
if pid == 0:
    said = False
    while time.process_time() < 0.6:
        if not said and time.process_time() >= 0.2:
            print("burning", flush=True)
            said = True
    os._exit(0)
os.waitpid(pid, 0)
print("reaped", flush=True)
time.sleep(60)
"""


def test_a_child_that_ends_between_readings_still_counts() -> None:
    with subprocess.Popen(
        [sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True
    ) as parent:
        assert parent.stdout is not None
        try:
            assert parent.stdout.readline().strip() == "burning"  # the child runs
            before = stack.cpu_seconds(parent.pid)
            assert parent.stdout.readline().strip() == "reaped"  # it ended, was waited for
            after = stack.cpu_seconds(parent.pid)
        finally:
            parent.kill()
    # /proc counts in clock ticks (10 ms): a little below the child's own reckoning.
    assert before >= 0.15
    assert after >= 0.55
    assert after >= before
