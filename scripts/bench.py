"""`make bench`: the system's performance benchmark, in one run on this machine.

    uv run --all-packages python scripts/bench.py              # the full run (about 24 minutes)
    uv run --all-packages python scripts/bench.py --quick      # a few short steps (smoke test)
    uv run --all-packages python scripts/bench.py --start-rate 300 --step 25 --profile
    uv run --all-packages python scripts/bench.py --env WORKFLOW_QUEUE__MAX_CONCURRENCY=32
    uv run --all-packages python scripts/bench.py --growth --skip knee,tracing --growth-rate 300

It starts the native stack (``dronetesting.stack``: redis-server, FerretDB, Mailpit and every
service on free loopback ports, a fresh temporary data folder, logs at WARNING), with tracing at
the production default (the charts' sampling ratio, OTLP to a local sink), and measures:

1. **the knee** (``benchmark.knee``): an open-loop generator (its own process) offers delivery
   requests at ``--start-rate`` (default 50/s; 40 s of warm-up), then ``--step`` (25/s) more
   every ``--step-seconds`` (as long as nine trips in ten: 110 s, so a step also does the work
   its drones cause on the way home), until a step is not sustained — a request refused or
   lost, or the end-to-end p99 (202 → delivery with its drone) above ``--p99-limit`` (2 s) — or
   ``--max-rate``; the knee is the highest sustained rate (when the first rate is not sustained the
   search steps down instead, to the first rate that is), then ``--refine`` (2) steps halve the
   gap between the knee and the rate above it that failed. One line per step: offered and
   scheduled rate, p99, losses, CPU, drones in the air;
2. **overload**: ``--overload`` (1.5 and 2) x the knee for ``--overload-seconds`` (as long as a
   step) each:
   goodput (scheduled/s) against the knee, with ingestion's admission control refusing what the
   queue cannot take in time;
3. **exactly once** over every accepted request of the stack (``benchmark.checks``);
4. **same-run baselines**: ``GET /status`` closed loop against a bare uvicorn app, and the
   workflow's HTTP client against a bare aiohttp session;
5. **tracing cost** (``benchmark.tracing``): fresh stacks with tracing off, at the production
   default, every span over OTLP, and the Azure Monitor distro against a local listener, each
   offered ``--tracing-rate`` (2.5 x the knee: fresh stacks, their fleets not yet in steady
   state, sustain more than the knee, and every row must refuse some for its goodput to be its
   capacity) for ``--tracing-seconds`` (25 s), the rows run ``--tracing-rounds`` (2) times
   interleaved;
6. **cost as work grows** (``--growth``, ``benchmark.growth``): fresh stacks seeded with past,
   completed deliveries (``benchmark.past``), each offered ``--growth-rate`` (0.8 x the knee) for
   ``--growth-seconds`` (30 s): 1 against 2 workflow replicas with 10,000 past deliveries, and
   10,000 against ``--growth-past`` (1,000,000) with one replica.

``--past N`` seeds the main stack with N past deliveries before the knee; ``--skip knee`` leaves
out the main stack (steps 1-4), e.g. for ``--growth --growth-rate R`` alone.

The load is realistic (``benchmark.fleet``, ``benchmark.load``): one request in ten asks to be
told by e-mail (the notifier and Mailpit run), and the fleet simulator flies every scheduled
delivery in time-lapse (``--speedup``, ``--stop-seconds``, ``--fleet``), a fix per drone per
second. ``--env`` passes settings to every service; ``--profile`` adds a window at the knee with
py-spy on every service (``reports/bench/profiles/``). Everything listens on 127.0.0.1 and stops
by itself. Results in ``--out`` (``reports/bench/``): ``report.md`` with ``latency.png``,
``throughput.png`` and ``cpu.png``, and ``result.json`` (``--render result.json`` redraws them
from it). Exit status 1 when an accepted request was not scheduled exactly once or something was
dead-lettered.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from benchmark.checks import verify
from benchmark.common import REPORTS, say
from benchmark.fleet import FLEET_SIZE, SPEEDUP, STOP_SECONDS, Sampler, describe, fleet_env
from benchmark.growth import growth_rows
from benchmark.knee import Plan, search, step_seconds
from benchmark.load import child_main, server_child
from benchmark.past import seed
from benchmark.plots import draw
from benchmark.profiling import summarize_profile
from benchmark.report import machine, markdown
from benchmark.runs import http_client_bench, status_bench
from benchmark.stack import BenchStack
from benchmark.tracing import ROWS, chart_sampling_ratio, row_env, tracing_rows

#: The tracing rows' offered rate, as a multiple of the knee (see the docstring, step 5).
TRACING_FACTOR = 2.5

QUICK = {
    "start_rate": 100.0,
    "step": 100.0,
    "step_seconds": 6.0,
    "max_rate": 300.0,
    "refine": 0,
    "warmup": 4.0,
    "overload_seconds": 6.0,
    "tracing_seconds": 6.0,
    "tracing_warmup": 2.0,
    "tracing_rounds": 1,
    "status_seconds": 3.0,
    "land_timeout": 30.0,
    "http_seconds": 2.0,
    "growth_seconds": 6.0,
    "growth_warmup": 2.0,
}


def options(argv: Sequence[str] | None) -> argparse.Namespace:
    env = os.environ.get
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--start-rate", type=float, default=float(env("BENCH_START_RATE", 50)))
    add("--step", type=float, default=float(env("BENCH_STEP", 25)))
    add(
        "--step-seconds",
        type=float,
        default=float(env("BENCH_STEP_SECONDS", 0)) or None,
        help="default: the fleet's p90 trip, rounded up to 10 s (see step_seconds)",
    )
    add("--max-rate", type=float, default=float(env("BENCH_MAX_RATE", 1000)))
    add("--warmup", type=float, default=40, help="seconds at the first rate before the steps")
    add("--p99-limit", type=float, default=2.0, help="seconds: end-to-end p99 of a sustained step")
    add("--refine", type=int, default=2, help="steps halving the gap above the knee")
    add("--overload", default="1.5,2", help="factors of the knee offered after the search")
    add("--overload-seconds", type=float, default=None, help="default: --step-seconds")
    add("--tracing-rate", type=float, default=None, help="default: 2.5 x the knee")
    add("--tracing-seconds", type=float, default=25)
    add("--tracing-warmup", type=float, default=10)
    add("--tracing-rounds", type=int, default=2, help="times over the rows, interleaved")
    add("--tracing-rows", default=",".join(ROWS), help=f"comma list of: {','.join(ROWS)}")
    add("--speedup", type=float, default=SPEEDUP, help="the fleet's time-lapse factor")
    add("--stop-seconds", type=float, default=STOP_SECONDS, help="at the pickup and drop-off")
    add("--fleet", type=int, default=FLEET_SIZE, help="drones")
    add("--status-seconds", type=float, default=10)
    add("--status-concurrency", type=int, default=32)
    add("--land-timeout", type=float, default=300, help="seconds the status reads wait for it")
    add("--http-seconds", type=float, default=5)
    add("--drain-timeout", type=float, default=180)
    add("--workflow-replicas", type=int, default=int(env("BENCH_WORKFLOW_REPLICAS", 1)))
    add("--env", action="append", default=[], metavar="NAME=VALUE", help="for every service")
    add("--past", type=int, default=0, help="past deliveries seeded before the knee")
    add("--growth", action="store_true", help="the cost-as-work-grows rows (fresh stacks)")
    add("--growth-rate", type=float, default=None, help="default: 0.8 x the knee")
    add("--growth-seconds", type=float, default=30)
    add("--growth-warmup", type=float, default=10)
    add("--growth-past", type=int, default=1_000_000, help="past deliveries of the large row")
    add("--skip", default="", help="comma list of: knee,overload,status,http,tracing")
    add("--quick", action="store_true", help="a few short steps (a smoke test)")
    add("--profile", action="store_true", help="py-spy every service in a window at the knee")
    add("--out", type=Path, default=REPORTS)
    add("--render", type=Path, metavar="RESULT_JSON", help="only redraw and rewrite the report")
    add("--child", choices=["open", "closed", "bare", "sink"], help=argparse.SUPPRESS)
    add("--spec", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        given = {a.lstrip("-").split("=")[0].replace("-", "_") for a in (argv or sys.argv[1:])}
        for name, value in QUICK.items():
            if name not in given:
                setattr(args, name, value)
        if "drain_timeout" not in given:
            args.drain_timeout = 60
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = options(argv)
    if args.child:
        return child_main(args)
    # A stopped benchmark (SIGTERM, as from `timeout` or a CI runner) unwinds like Ctrl-C: every
    # stack it started is stopped by its context manager, nothing is left listening.
    signal.signal(signal.SIGTERM, _stop)
    if args.render:
        write_report(json.loads(args.render.read_text()), args.out)
        return 0
    began = time.monotonic()
    skip = set(filter(None, args.skip.split(",")))
    ratio = chart_sampling_ratio()
    env = fleet_env(args.speedup, args.stop_seconds, args.fleet)
    env["DRONESCHEDULER_STARTUP_WAIT"] = "60"
    # Tokens are on, as in `make run`; one account sends the whole load, beyond the per-account
    # limits a customer has (those are measured by the tests, not here).
    env["INGESTION_LIMITS__REQUESTS_PER_MINUTE"] = "100000000"
    env["INGESTION_LIMITS__BURST"] = "100000"
    env["INGESTION_LIMITS__MAX_IN_PROGRESS"] = "100000000"
    env.update(item.split("=", 1) for item in args.env)
    args.out.mkdir(parents=True, exist_ok=True)
    log = args.out / "stack.log"
    log.write_text("")
    fleet = describe(args.speedup, args.stop_seconds, args.fleet)
    if args.step_seconds is None:
        args.step_seconds = step_seconds(fleet["trip_seconds_slowest_class"])
    if args.overload_seconds is None:  # as long as a step: a shorter window flatters goodput
        args.overload_seconds = args.step_seconds
    plan = Plan(
        start=args.start_rate,
        step=args.step,
        seconds=args.step_seconds,
        max_rate=args.max_rate,
        warmup=args.warmup,
        p99_limit_ms=args.p99_limit * 1e3,
        overload_factors=[]
        if "overload" in skip
        else [float(f) for f in args.overload.split(",") if f],
        overload_seconds=args.overload_seconds,
        refine=args.refine,
    )
    report: dict[str, Any] = {
        "benchmark": "dronedelivery end to end",
        "machine": machine(),
        "settings": {
            "summary": (
                f"workflow replicas {args.workflow_replicas}, {args.past:,} past deliveries, "
                "services at WARNING, tracing "
                f"ratio {ratio:g} over OTLP, env {dict(item.split('=', 1) for item in args.env)}"
            ),
            "sampling_ratio": ratio,
            "env": env,
            "argv": list(argv or sys.argv[1:]),
        },
        "fleet": fleet,
    }
    say(
        f"fleet: {args.fleet:,} drones, speeds x{args.speedup:g}, stops {args.stop_seconds:g} s; "
        f"trips {report['fleet']['trip_seconds_slowest_class']} s"
    )
    profile_dir = args.out / "profiles" if args.profile else None
    with server_child("sink") as sink_port:
        main_env = {**env, **row_env("default", ratio, sink_port)}
        knee: dict[str, Any] | None = None
        if "knee" not in skip:
            say(f"stack: {args.workflow_replicas} workflow replica(s), tracing ratio {ratio:g}")
            with (
                BenchStack(
                    label="main", workflow_replicas=args.workflow_replicas, env=main_env, log=log
                ) as bench,
                Sampler(bench.config.redis_port) as sampler,
            ):
                if args.past:
                    report["past"] = seed(bench.config, args.past)
                ids: list[str] = []
                origin = time.time()
                knee = search(
                    bench,
                    plan,
                    sampler,
                    origin=origin,
                    keep=lambda result: ids.extend(result.pop("_ids")),
                    profile=profile_dir,
                )
                knee.update(plan=plan.__dict__, origin=origin, samples=sampler.samples)
                report["knee"] = knee
                say(f"verifying the {len(ids):,} accepted requests")
                knee["verify"] = verify(bench, ids, args.drain_timeout)
                say(json.dumps(knee["verify"]))
                if "status" not in skip:
                    # Measured against a baseline on the same machine: not while the fleet
                    # still flies (the simulator and the telemetry consumer busy) and the
                    # baseline does not.
                    say("status reads: waiting for the fleet to land")
                    landed = sampler.wait_landed(args.land_timeout)
                    say(
                        f"status GET closed loop, {args.status_concurrency} concurrent, "
                        "vs bare uvicorn"
                    )
                    report["status"] = status_bench(
                        bench, ids, args.status_concurrency, args.status_seconds, profile_dir
                    )
                    status = report["status"]
                    status["waited_for_landing_s"] = round(landed, 1)
                    say(f"status: ratio {status['ratio']} (rounds {status['ratios']})")
        if profile_dir and profile_dir.exists():
            report["profiles"] = {
                p.stem: summarize_profile(p)
                for p in sorted(profile_dir.glob("*.txt"))
                if p.stat().st_size
            }
        if "http" not in skip:
            say("outbound HTTP client, 20 concurrent, vs a bare aiohttp session")
            report["http_client"] = http_client_bench(args.http_seconds)
        rows = tuple(row for row in args.tracing_rows.split(",") if row)
        if "tracing" not in skip and rows:
            report["tracing"] = tracing_rows(
                base_env=env,
                rows=rows,
                ratio=ratio,
                sink_port=sink_port,
                rate=args.tracing_rate or TRACING_FACTOR * ((knee and knee["knee"]) or plan.start),
                seconds=args.tracing_seconds,
                warmup=args.tracing_warmup,
                rounds=args.tracing_rounds,
                workflow_replicas=args.workflow_replicas,
                log=log,
            )
        if args.growth:
            report["growth"] = growth_rows(
                env=main_env,
                rate=args.growth_rate or 0.8 * ((knee and knee["knee"]) or plan.start),
                seconds=args.growth_seconds,
                warmup=args.growth_warmup,
                large=args.growth_past,
                log=log,
            )

    report["duration_s"] = time.monotonic() - began
    (args.out / "result.json").write_text(json.dumps(report, indent=1, default=str) + "\n")
    write_report(report, args.out)
    return 0 if knee is None or knee["verify"]["all_scheduled_exactly_once"] else 1


def _stop(signum: int, frame: FrameType | None) -> None:
    # Once: a second signal must not cut the stacks' clean-up short.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise SystemExit(128 + signum)


def write_report(report: dict[str, Any], out: Path) -> None:
    """The plots and ``report.md`` from a run's results."""
    out.mkdir(parents=True, exist_ok=True)
    for picture in draw(report, out) if "knee" in report else []:
        say(f"drew {picture}")
    text = markdown(report)
    (out / "report.md").write_text(text + "\n")
    sys.stdout.write("\n" + text + "\n")


if __name__ == "__main__":
    sys.exit(main())
