"""`make loadtest`: run the locust scenarios headless for a bounded time and judge the thresholds.

    uv run --all-packages python loadtests/run.py                      # native stack, started here
    uv run --all-packages python loadtests/run.py --host https://localhost:8443   # the gateway
    INGESTION_URL=http://127.0.0.1:8001 DELIVERY_URL=http://127.0.0.1:8002 \
        uv run --all-packages python loadtests/run.py                  # a stack already running

Without ``--host`` (or ``INGESTION_URL`` + ``DELIVERY_URL``) the native stack is started
(``dronetesting.stack``) on its native ports (8001..8005, Redis 6379, FerretDB 27017) — or on free
ports when one of those is taken or ``--free-ports`` is given — with its data in a temporary
folder, and stopped afterwards. Locust runs headless for ``LOADTEST_RUN_TIME`` (60s) with
``LOADTEST_USERS`` users (50) spawned at ``LOADTEST_SPAWN_RATE``/s (10), and writes CSV and HTML
reports to ``reports/loadtest/``. The exit status is locust's: non-zero when a threshold failed
(see ``loadtests/locustfile.py``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REPORTS = ROOT / "reports" / "loadtest"
LOCUSTFILE = Path(__file__).resolve().parent / "locustfile.py"


def port_taken(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def run_locust(args: argparse.Namespace, env: dict[str, str]) -> int:
    REPORTS.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable, "-m", "locust",
        "-f", str(LOCUSTFILE),
        "--headless",
        "--users", str(args.users),
        "--spawn-rate", str(args.spawn_rate),
        "--run-time", args.run_time,
        "--stop-timeout", "15",
        "--csv", str(REPORTS / "loadtest"),
        "--csv-full-history",
        "--html", str(REPORTS / "report.html"),
        "--only-summary",
        "--loglevel", "INFO",
    ]  # fmt: skip
    if args.host:
        command += ["--host", args.host]
    print(f"loadtest: {' '.join(command[2:])}", flush=True)  # noqa: T201
    child = subprocess.Popen(command, env=env, cwd=ROOT)  # noqa: S603 - our interpreter
    try:
        return child.wait()
    except KeyboardInterrupt:
        child.send_signal(signal.SIGINT)
        return child.wait(timeout=30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default=os.environ.get("LOADTEST_HOST", ""))
    parser.add_argument("--users", type=int, default=int(os.environ.get("LOADTEST_USERS", 50)))
    parser.add_argument(
        "--spawn-rate", type=float, default=float(os.environ.get("LOADTEST_SPAWN_RATE", 10))
    )
    parser.add_argument("--run-time", default=os.environ.get("LOADTEST_RUN_TIME", "60s"))
    parser.add_argument(
        "--workflow-replicas",
        type=int,
        default=int(os.environ.get("LOADTEST_WORKFLOW_REPLICAS", 1)),
    )
    parser.add_argument("--free-ports", action="store_true", help="never use the native ports")
    args = parser.parse_args()

    env = dict(os.environ)
    if args.host or (env.get("INGESTION_URL") and env.get("DELIVERY_URL")):
        return run_locust(args, env)

    from dronetesting.stack import SERVICE_PORTS, Stack, StackConfig

    data_dir = Path(tempfile.mkdtemp(prefix="loadtest-"))
    ports = dict(SERVICE_PORTS)
    redis_port, mongo_port = 6379, 27017
    replica_ports = {f"workflow-{n}": 8005 + 100 * n for n in range(1, args.workflow_replicas)}
    wanted = [*ports.values(), redis_port, mongo_port, *replica_ports.values()]
    if args.free_ports or any(port_taken(port) for port in wanted):
        if not args.free_ports:
            print("loadtest: a native port is taken; the stack uses free ports", flush=True)  # noqa: T201
        ports = {name: free_port() for name in ports}
        redis_port, mongo_port = free_port(), free_port()
        replica_ports = {name: free_port() for name in replica_ports}
    config = StackConfig(
        data_dir=data_dir,
        redis_port=redis_port,
        mongo_port=mongo_port,
        ports=ports,
        workflow_replicas=args.workflow_replicas,
        replica_ports=replica_ports,
        log_level=os.environ.get("LOADTEST_LOG_LEVEL", "WARNING"),
        log_json=True,
        # One customer sends the whole load: beyond a customer's per-account limits.
        extra_env={
            "INGESTION_LIMITS__REQUESTS_PER_MINUTE": "100000000",
            "INGESTION_LIMITS__BURST": "100000",
            "INGESTION_LIMITS__MAX_IN_PROGRESS": "100000000",
        },
    )
    REPORTS.mkdir(parents=True, exist_ok=True)
    log_path = REPORTS / "stack.log"
    env["INGESTION_URL"] = config.url("ingestion")
    env["DELIVERY_URL"] = config.url("delivery")
    env["LOADTEST_TOKEN"] = config.dev_issuer().mint_customer(
        account="loadtest", user="loadtest-customer", lifetime=6 * 3600
    )
    with log_path.open("w") as log:
        stack = Stack(config, out=log)
        try:
            print(  # noqa: T201
                f"loadtest: starting the native stack (data {data_dir}, log {log_path})", flush=True
            )
            stack.start(timeout=180)
            print(  # noqa: T201
                f"loadtest: stack ready: ingestion {env['INGESTION_URL']}, "
                f"delivery {env['DELIVERY_URL']}",
                flush=True,
            )
            return run_locust(args, env)
        except (RuntimeError, TimeoutError, OSError) as exc:
            print(f"loadtest: {exc} (see {log_path})", file=sys.stderr)  # noqa: T201
            return 2
        finally:
            stack.stop()
            shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
