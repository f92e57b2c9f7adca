"""The background fleet: the simulator flies every delivery the benchmark schedules.

Every scheduled delivery is flown for real by the fleet simulator (``services/simulator``):
base → pickup → drop-off → base, reporting a fix every second (its default interval) on the
telemetry stream, confirming the delivery at the drop-off and releasing the drone at home. At
real speeds a trip takes about half an hour (a few at the benchmark's rates would need hundreds
of thousands of drones), so the fleet flies in **time-lapse**: every drone class's cruise speed is
multiplied by ``speedup`` in the drone scheduler (so its plans and ETAs match) and the simulator
reads them from there; both stop ``stop_seconds`` at the pickup and at the drop-off. A trip then
lasts about 42 s on average, drones come home and are released, and at an offered rate R about
R x (mean trip) drones are in the air: the background load grows with the rate, as it would, and
at the knee it is at least ``IN_AIR_FLOOR`` drones (the report says whether it was).

The fleet (``fleet_size`` drones) is far larger than the most drones ever in the air at once,
so no request waits for a drone (the report shows the peak next to it). Everything else is the
simulator's and the scheduler's defaults.
"""

from __future__ import annotations

import json
import statistics
import threading
import time
from typing import Any

from .common import r

#: Cruise speeds x this (the scheduler's classes; the simulator flies what they say): trips of
#: about 42 s on average over the classes, so that from about 48/s some ``IN_AIR_FLOOR`` drones
#: are in the air (x40 gave 1,709 at 50/s).
SPEEDUP = 32.0
#: The background asked of the benchmark: drones in flight at the knee, a fix a second each.
IN_AIR_FLOOR = 2_000
#: Seconds at the pickup and again at the drop-off (the scheduler plans the same).
STOP_SECONDS = 1.0
#: Drones in the fleet (the scheduler's default).
FLEET_SIZE = 40_000
#: The slowest a drone flies, as a share of its cruise speed (the simulator's default wind).
SLOWEST_WIND = 0.7
#: Each drone reports a fix this often (the simulator's default).
TELEMETRY_INTERVAL = 1.0


def fleet_env(speedup: float, stop_seconds: float, fleet_size: int) -> dict[str, str]:
    """The settings of a time-lapse fleet for the scheduler and the simulator."""
    from dronescheduler.settings import DEFAULT_CLASSES

    classes = [
        {**spec.model_dump(mode="json"), "speed_mph": spec.speed_mph * speedup}
        for spec in DEFAULT_CLASSES
    ]
    return {
        "DRONESCHEDULER_FLEET__COUNT": str(fleet_size),
        "DRONESCHEDULER_FLEET__CLASSES": json.dumps(classes),
        "DRONESCHEDULER_FLEET__STOP_SECONDS": f"{stop_seconds:g}",
        "SIMULATOR_HANDLING_SECONDS": f"{stop_seconds:g}",
        "SIMULATOR_TELEMETRY_INTERVAL": f"{TELEMETRY_INTERVAL:g}",
    }


def trip_seconds(speedup: float, stop_seconds: float, sample: int = 2000) -> dict[str, float]:
    """Planned trip durations of the benchmark's requests (median, p90, max), from the nearest
    base at the slowest class's speed (an upper bound: faster classes come home sooner)."""
    from dronecommon.area import DEFAULT_SERVICE_AREA
    from dronescheduler.settings import DEFAULT_CLASSES

    area = DEFAULT_SERVICE_AREA
    slowest = min(spec.speed_mph for spec in DEFAULT_CLASSES) * speedup
    trips = []
    for i in range(sample):
        pickup = area.resolve(f"bench pickup {i}")
        dropoff = area.resolve(f"bench drop-off {i}")
        base, _ = area.nearest_base(pickup)
        miles = area.trip_miles(base.location, pickup, dropoff)
        trips.append(miles / slowest * 3600 + 2 * stop_seconds)
    trips.sort()
    return {
        "mean": r(statistics.fmean(trips), 1),
        "median": r(statistics.median(trips), 1),
        "p90": r(trips[int(len(trips) * 0.9)], 1),
        "max": r(trips[-1], 1),
        # The simulator's wind slows a leg to 70 % of cruise at worst (strength 0.2, gusts 0.1).
        "max_in_the_worst_wind": r(
            (trips[-1] - 2 * stop_seconds) / SLOWEST_WIND + 2 * stop_seconds, 1
        ),
    }


def describe(speedup: float, stop_seconds: float, fleet_size: int) -> dict[str, Any]:
    trips = trip_seconds(speedup, stop_seconds)
    return {
        "fleet_size": fleet_size,
        "speedup": speedup,
        "stop_seconds": stop_seconds,
        "telemetry_interval_s": TELEMETRY_INTERVAL,
        "trip_seconds_slowest_class": trips,
        # Little's law at the slowest class: drones in the air per delivery/s, at most.
        "drones_in_air_per_delivery_per_s": trips["mean"],
        "rate_the_fleet_sustains_at_least": r(fleet_size / trips["max_in_the_worst_wind"], 0),
    }


class Sampler:
    """Once a second, in a thread: drones in the air (the simulator's flights) and the queue's
    backlog — a time series for the report and the plots."""

    def __init__(self, redis_port: int, interval: float = 1.0) -> None:
        import redis

        self._redis = redis.Redis(host="127.0.0.1", port=redis_port)
        self._interval = interval
        self._stop = threading.Event()
        self.samples: list[dict[str, float]] = []
        self._thread = threading.Thread(target=self._run, name="bench-sampler", daemon=True)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self._redis.close()

    def _read(self) -> dict[str, float]:
        pipe = self._redis.pipeline(transaction=False)
        pipe.hlen("simulator:flights")
        pipe.xlen("queue:{deliveryrequests}")
        try:
            flights, backlog = pipe.execute(raise_on_error=False)
        except Exception:
            return {}
        return {
            "at": time.time(),
            "drones_in_air": float(flights) if isinstance(flights, int) else 0.0,
            "queue_backlog": float(backlog) if isinstance(backlog, int) else 0.0,
        }

    def _run(self) -> None:
        while not self._stop.is_set():
            sample = self._read()
            if sample:
                self.samples.append(sample)
            self._stop.wait(self._interval)

    def wait_landed(self, timeout: float) -> float:
        """Wait until no drone is in the air (at most ``timeout`` s); the seconds waited."""
        began = time.monotonic()
        while time.monotonic() - began < timeout:
            sample = self._read()
            if sample and not sample["drones_in_air"]:
                break
            time.sleep(0.5)
        return time.monotonic() - began

    def between(self, start: float, end: float) -> list[dict[str, float]]:
        return [s for s in self.samples if start <= s["at"] <= end]

    def summary(self, start: float, end: float) -> dict[str, float]:
        """Drones in the air (min, mean, max) and the queue's largest backlog in a window."""
        window = self.between(start, end)
        if not window:
            return {}
        air = [s["drones_in_air"] for s in window]
        return {
            "drones_in_air_min": min(air),
            "drones_in_air_mean": r(sum(air) / len(air), 0),
            "drones_in_air_max": max(air),
            "queue_backlog_max": max(s["queue_backlog"] for s in window),
        }
