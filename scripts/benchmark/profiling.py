"""Profiles of the services during a window: py-spy for Python, pprof for FerretDB."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from .stack import BenchStack


def py_spy(pid: int, duration: int, output: Path) -> subprocess.Popen[bytes] | None:
    """``py-spy record`` of one process (raw collapsed stacks), or None without py-spy."""
    binary = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(binary).exists():
        return None
    output.parent.mkdir(parents=True, exist_ok=True)
    command = [binary, "record", "--pid", str(pid), "--duration", str(duration), "--rate", "50"]
    command += ["--format", "raw", "--nonblocking", "--output", str(output)]
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


def summarize_profile(path: Path, top: int = 10) -> dict[str, list[tuple[str, float]]]:
    """From a py-spy raw (collapsed) file: the hottest leaf frames (self time) and, by module,
    where the samples are spent (inclusive, first frame of each library seen from the bottom)."""
    leaves: dict[str, int] = {}
    libraries: dict[str, int] = {}
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        try:
            count = int(count_text)
        except ValueError:
            continue
        total += count
        frames = [_frame(f) for f in stack.split(";")]
        leaves[frames[-1]] = leaves.get(frames[-1], 0) + count
        # The library of the leaf frame: where the CPU goes (idle = the event loop's select).
        where = frames[-1].rsplit(" (", 1)[-1].rstrip(")").split("/")[0]
        libraries[where] = libraries.get(where, 0) + count

    def rank(table: dict[str, int]) -> list[tuple[str, float]]:
        ranked = sorted(table.items(), key=lambda kv: -kv[1])[:top]
        return [(name, round(100 * count / max(1, total), 1)) for name, count in ranked]

    return {"self": rank(leaves), "by_library": rank(libraries)}
