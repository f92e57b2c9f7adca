"""The benchmark's CPU accounting (``scripts/benchmark/stack.py``): a process's figure counts its
children, including one that ended between two readings (redis-server's snapshot fork)."""

from __future__ import annotations

import subprocess
import sys
import time

from .conftest import bench_module

stack = bench_module("stack")

# A parent that forks a child burning 0.6 s of CPU, waits for it, then idles.
PARENT = """
import os, time
pid = os.fork()
if pid == 0:
    started = time.process_time()
    while time.process_time() - started < 0.6:
        pass
    os._exit(0)
time.sleep(0.3)
os.waitpid(pid, 0)
time.sleep(5)
"""


def test_a_child_that_ends_between_readings_still_counts() -> None:
    parent = subprocess.Popen([sys.executable, "-c", PARENT])
    try:
        time.sleep(0.4)  # the child is running
        before = stack.cpu_seconds(parent.pid)
        time.sleep(1.5)  # the child has ended and been waited for
        after = stack.cpu_seconds(parent.pid)
    finally:
        parent.kill()
        parent.wait()
    assert before > 0.1
    assert after >= 0.6
    assert after >= before
