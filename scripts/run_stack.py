"""`make run`: the whole system on this machine, on the embedded local defaults.

Redis (queue + delivery store) and FerretDB (MongoDB wire protocol) with data in .data/, then
package, dronescheduler, delivery, workflow, the fleet simulator and ingestion on their native
ports.
Ctrl-C stops everything.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from dronecommon.stack import Stack, StackConfig

ROOT = Path(__file__).resolve().parents[1]

HOW_TO = """
The drone delivery system is up. Schedule the sample delivery:

  curl -si -X POST http://127.0.0.1:{ingestion}/api/deliveryrequests \\
    -H 'Content-Type: application/json' \\
    -d '{{"ownerId": "myowner", "pickupLocation": "my pickup",
         "pickupTime": "2019-05-08T20:00:00.000Z", "deadline": "", "expedited": true,
         "confirmationRequired": "None",
         "packageInfo": {{"packageId": "mypackage", "size": "Small", "weight": 10, "tag": "mytag"}},
         "dropOffLocation": "drop off"}}'

then read it back with the deliveryId from the answer:

  curl -s http://127.0.0.1:{delivery}/api/deliveries/public/<deliveryId>
  curl -s http://127.0.0.1:{delivery}/api/deliveries/<deliveryId>/status

Press Ctrl-C to stop everything.
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-dir", type=Path, default=ROOT / ".data")
    parser.add_argument("--workflow-replicas", type=int, default=1)
    parser.add_argument("--json-logs", action="store_true")
    args = parser.parse_args()

    config = StackConfig(
        data_dir=args.data_dir, workflow_replicas=args.workflow_replicas, log_json=args.json_logs
    )
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    stack = Stack(config)
    try:
        stack.start()
        print(HOW_TO.format(ingestion=config.ports["ingestion"], delivery=config.ports["delivery"]))
        while not stop.wait(1.0):
            dead = [p.name for p in stack.processes.values() if not p.alive]
            if dead:
                print(f"stopped unexpectedly: {', '.join(dead)}", file=sys.stderr)
                return 1
        return 0
    except (RuntimeError, TimeoutError, OSError) as exc:
        print(f"make run: {exc}", file=sys.stderr)
        return 1
    finally:
        stack.stop()


if __name__ == "__main__":
    sys.exit(main())
