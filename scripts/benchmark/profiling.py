"""Profiles of the services during a window: py-spy for Python, pprof for FerretDB."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from .stack import BenchStack


def py_spy(pid: int, duration: int, output: Path) -> subprocess.Popen[bytes] | None:
    """``py-spy record`` of one process (raw collapsed stacks), or None without py-spy.

    ``--gil``: only the thread holding the GIL is sampled, so threads that wait (the thread pool,
    the telemetry exporters) never count as busy. py-spy samples wall time, though: a thread
    switched out while it holds the GIL counts as busy where it was, and uvloop writes to sockets
    without releasing it, so on two busy cores socket writes look far costlier than they are (a
    write wakes its peer, which takes the CPU). For CPU shares, ``perf record -a`` (by process and
    library) is the truth; these profiles say where the time of a request goes.
    """
    binary = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(binary).exists():
        return None
    output.parent.mkdir(parents=True, exist_ok=True)
    command = [binary, "record", "--pid", str(pid), "--duration", str(duration), "--rate", "200"]
    command += ["--gil", "--format", "raw", "--nonblocking", "--output", str(output)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def start_profilers(
    bench: BenchStack, seconds: float, folder: Path
) -> list[subprocess.Popen[bytes]]:
    """py-spy record (raw collapsed stacks) on the Python services during the middle of a window."""
    folder.mkdir(parents=True, exist_ok=True)
    duration = max(5, int(seconds * 0.6))
    procs = []
    for name, pid in bench.pids().items():
        if name not in ("redis", "ferretdb"):
            proc = py_spy(pid, duration, folder / f"{name}.txt")
            if proc is not None:
                procs.append(proc)
    # FerretDB (Go): its pprof CPU profile from the debug address.
    debug_port = getattr(bench.stack.mongo, "debug_port", None)
    if debug_port:
        procs.append(
            subprocess.Popen(
                [
                    "curl",
                    "-s",
                    "-o",
                    str(folder / "ferretdb.pprof"),
                    f"http://127.0.0.1:{debug_port}/debug/pprof/profile?seconds={duration}",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
    return procs


def _frame(frame: str) -> str:
    """``func (pkg/module.py:12)`` -> ``func (pkg/module.py)``."""
    name, _, where = frame.partition(" (")
    return f"{name} ({where.rsplit(':', 1)[0].rstrip(')')})"


#: Leaf frames of a thread waiting (the event loop in its poll, worker threads on their
#: condition): py-spy samples them too; they are not where the CPU goes.
IDLE_LEAVES = frozenset(
    {
        "Runner.run (asyncio/runners.py)",
        "Condition.wait (threading.py)",
        "Event.wait (threading.py)",
        "_worker (concurrent/futures/thread.py)",
        "Server.main_loop (uvicorn/server.py)",
        "sleep (asyncio/tasks.py)",
        "select (selectors.py)",
    }
)


def summarize_profile(path: Path, top: int = 10) -> dict[str, list[tuple[str, float]]]:
    """From a py-spy raw (collapsed) file: the hottest leaf frames (self time) and the library
    of the leaf frames, as shares of the busy samples (waiting threads left out)."""
    leaves: dict[str, int] = {}
    libraries: dict[str, int] = {}
    total = busy = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        try:
            count = int(count_text)
        except ValueError:
            continue
        total += count
        leaf = _frame(stack.split(";")[-1])
        if leaf in IDLE_LEAVES:
            continue
        busy += count
        leaves[leaf] = leaves.get(leaf, 0) + count
        where = leaf.rsplit(" (", 1)[-1].rstrip(")").split("/")[0]
        libraries[where] = libraries.get(where, 0) + count

    def rank(table: dict[str, int]) -> list[tuple[str, float]]:
        ranked = sorted(table.items(), key=lambda kv: -kv[1])[:top]
        return [(name, round(100 * count / max(1, busy), 1)) for name, count in ranked]

    return {
        "self": rank(leaves),
        "by_library": rank(libraries),
        "busy_share": [("busy", round(100 * busy / max(1, total), 1))],
    }
