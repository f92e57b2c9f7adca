"""`make run`: the whole system on this machine, on the embedded local defaults.

Redis (queue + delivery store), FerretDB (MongoDB wire protocol) and Mailpit (SMTP and a web
inbox) with data in .data/, then package, dronescheduler, delivery, the notifier, workflow, the
fleet simulator, ingestion and the web app on their native ports, every one checking bearer
tokens from the development issuer (its key in .data/dev-issuer; `make token` prints a customer's
token; the web app's sign-in hands them out). `--auth off` (`make run AUTH=off`) runs without
tokens. Once every service is ready it prints how to call the API, where the e-mail arrives and
each service's docs URLs. Ctrl-C stops everything.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from dronecommon.apidocs import DOCS_URL, REDOC_URL
from dronetesting.stack import SERVICE_PORTS, PortInUseError, Stack, StackConfig

ROOT = Path(__file__).resolve().parents[1]

BANNER = """
================================================================================
  The web app:  {webapp}
  Sign in with any account and user (tick "Operator" for {webapp}/ops),
  schedule a delivery and watch the drone fly it on the map.
================================================================================
"""

HOW_TO = """
The drone delivery system is up. Schedule the sample delivery as customer contoso/myowner
(`make token ACCOUNT=<account> USER=<user>` for another customer; `ROLE=Operator` for an
operator){auth_note}:

  TOKEN=$(make -s token)
  curl -si -X POST http://127.0.0.1:{ingestion}/api/deliveryrequests \\
    -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \\
    -d '{{"ownerId": "myowner", "pickupLocation": "my pickup",
         "pickupTime": "2019-05-08T20:00:00.000Z", "deadline": "", "expedited": true,
         "confirmationRequired": "None",
         "packageInfo": {{"packageId": "mypackage", "size": "Small", "weight": 10, "tag": "mytag"}},
         "dropOffLocation": "drop off", "notify": {{"emailAddress": "you@example.com"}}}}'

then read it back with the deliveryId from the answer:

  curl -s -H "Authorization: Bearer $TOKEN" http://127.0.0.1:{delivery}/api/deliveries/<deliveryId>/status
  curl -s http://127.0.0.1:{delivery}/api/deliveries/public/<deliveryId>

The notifier e-mails you@example.com as the delivery moves: read it in Mailpit's inbox at
{inbox} (SMS go to {sms}, or GET http://127.0.0.1:{notifier}/api/notifications/sms), and
list what was sent for a delivery (an internal route: a service token holding Notifications.Read):

  NTOKEN=$(make -s token SERVICE=ops AUD=notifier ROLE=Notifications.Read)
  curl -s -H "Authorization: Bearer $NTOKEN" \\
    'http://127.0.0.1:{notifier}/api/notifications?deliveryId=<deliveryId>'

API docs, served by each service (Swagger UI, then ReDoc):

{docs}

Press Ctrl-C to stop everything.
{banner}"""

PORTS_HINT = """\
Stop what holds them (another `make run`?), or move this stack's ports:
  make run RUN_ARGS="--port-offset 1000"   (Redis 7379, FerretDB 28017, Mailpit 2025/9025,
                                           web app 9000, services 9001-9007)"""
LOGS_HINT = """\
Each service's output is above, each line after its name; Redis, FerretDB and Mailpit write to
{data}/redis/redis.log, {data}/ferretdb/ferretdb.log and {data}/mailpit/mailpit.log.
See "Troubleshooting" in README.md."""


def docs_table(config: StackConfig) -> str:
    """One line per service: its Swagger UI and ReDoc URLs."""
    width = max(len(service) for service in config.services)
    lines = []
    for service in sorted(config.services, key=list(SERVICE_PORTS).index):
        base = config.url(service)
        lines.append(f"  {service.ljust(width)}  {base}{DOCS_URL}  {base}{REDOC_URL}")
    return "\n".join(lines)


def how_to(config: StackConfig) -> str:
    """What ``make run`` prints once every service is ready."""
    note = "" if config.auth else " (tokens are OFF in this run: the header is not needed)"
    return HOW_TO.format(
        ingestion=config.ports["ingestion"],
        delivery=config.ports["delivery"],
        notifier=config.ports["notifier"],
        inbox=config.inbox_url,
        sms=config.data_dir / "sms.jsonl",
        docs=docs_table(config),
        banner=BANNER.format(webapp=config.url("webapp")) if "webapp" in config.ports else "",
        auth_note=note,
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-dir", type=Path, default=ROOT / ".data")
    parser.add_argument("--workflow-replicas", type=int, default=1)
    parser.add_argument("--json-logs", action="store_true")
    parser.add_argument(
        "--port-offset",
        type=int,
        default=0,
        help="add this to every port (Redis 6379, FerretDB 27017, Mailpit 1025 and 8025, "
        "the web app 8000, services 8001-8007)",
    )
    parser.add_argument(
        "--auth",
        choices=("on", "off"),
        default="on",
        help="bearer tokens from the development issuer (default on; off: no tokens anywhere)",
    )
    parser.add_argument(
        "--ready-timeout",
        type=float,
        default=90.0,
        help="seconds to wait for every /readyz (default 90)",
    )
    args = parser.parse_args()

    offset = args.port_offset
    config = StackConfig(
        data_dir=args.data_dir,
        workflow_replicas=args.workflow_replicas,
        log_json=args.json_logs,
        redis_port=6379 + offset,
        mongo_port=27017 + offset,
        mailpit_smtp_port=1025 + offset,
        mailpit_http_port=8025 + offset,
        ports={service: port + offset for service, port in SERVICE_PORTS.items()},
        auth=args.auth == "on",
    )
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    stack = Stack(config)
    try:
        stack.start(timeout=args.ready_timeout)
        print(how_to(config))
        while not stop.wait(1.0):
            dead = [p.name for p in stack.processes.values() if not p.alive]
            if dead:
                print(f"stopped unexpectedly: {', '.join(dead)}", file=sys.stderr)
                return 1
        return 0
    except PortInUseError as exc:
        print(f"make run: {exc}", file=sys.stderr)
        print(PORTS_HINT, file=sys.stderr)
        return 1
    except (RuntimeError, TimeoutError, OSError) as exc:
        print(f"make run: {exc}", file=sys.stderr)
        print(LOGS_HINT.format(data=config.data_dir), file=sys.stderr)
        return 1
    finally:
        stack.stop()


if __name__ == "__main__":
    sys.exit(main())
