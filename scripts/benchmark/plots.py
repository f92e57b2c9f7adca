"""The pictures of a run (matplotlib, no display): ``latency.png``, ``throughput.png``,
``cpu.png``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

PROCESS_ORDER = (
    "ingestion",
    "workflow",
    "package",
    "dronescheduler",
    "delivery",
    "simulator",
    "notifier",
    "redis",
    "ferretdb",
    "mailpit",
)


def draw(report: dict[str, Any], folder: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    folder.mkdir(parents=True, exist_ok=True)
    return [
        _latency(report, folder / "latency.png"),
        _throughput(report, folder / "throughput.png"),
        _cpu(report, folder / "cpu.png"),
    ]


def _windows(report: dict[str, Any]) -> list[dict[str, Any]]:
    knee = report["knee"]
    found = [*knee["steps"], *knee["overload"]]
    if knee.get("warmup"):
        found.insert(0, knee["warmup"])
    return sorted(found, key=lambda w: w["wall_start"])


def _latency(report: dict[str, Any], path: Path) -> Path:
    import matplotlib.pyplot as plt

    origin = report["knee"]["origin"]
    limit = report["knee"]["plan"]["p99_limit_ms"]
    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(12, 7.5), sharex=True, gridspec_kw={"height_ratios": [3, 1.4]}
    )
    colours = plt.get_cmap("tab10")
    for n, result in enumerate(_windows(report)):
        series = result.get("series") or []
        if not series:
            continue
        colour = colours(n % 10)
        t = [row[0] for row in series]
        top.plot(t, [row[3] for row in series], color=colour, linewidth=1.6)
        top.plot(t, [row[2] for row in series], color=colour, linewidth=0.8, linestyle="--")
        top.annotate(
            f"{result['label']}\n{result['offered_rate']:g}/s",
            xy=(t[0], 1.0),
            xycoords=("data", "axes fraction"),
            xytext=(2, -4),
            textcoords="offset points",
            va="top",
            fontsize=7,
            color=colour,
        )
        top.axvspan(t[0], t[-1] + 1, color=colour, alpha=0.06)
    top.axhline(limit, color="crimson", linewidth=1, linestyle=":")
    top.text(0, limit, f" p99 limit {limit / 1e3:g} s", color="crimson", fontsize=8, va="bottom")
    top.set_yscale("log")
    top.set_ylabel("end-to-end latency (ms)\np99 solid, p50 dashed")
    top.set_title("End-to-end latency (202 → delivery with its drone) per second of acceptance")
    samples = report["knee"].get("samples") or []
    if samples:
        t = [s["at"] - origin for s in samples]
        bottom.plot(t, [s["drones_in_air"] for s in samples], color="tab:green", linewidth=1)
        bottom.set_ylabel("drones in the air", color="tab:green")
        backlog = bottom.twinx()
        backlog.plot(t, [s["queue_backlog"] for s in samples], color="tab:purple", linewidth=1)
        backlog.set_ylabel("queue backlog (messages)", color="tab:purple")
    bottom.set_xlabel("seconds since the first request")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _throughput(report: dict[str, Any], path: Path) -> Path:
    import matplotlib.pyplot as plt

    knee = report["knee"]
    # In order of rate: the refining steps come after the step that failed.
    steps = sorted(knee["steps"], key=lambda w: w["offered_rate"])
    overload = knee["overload"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 5))
    offered = [w["offered_rate"] for w in [*steps, *overload]]
    top = max([*offered, 1.0]) * 1.1
    left.plot(
        [0, top], [0, top], color="grey", linestyle=":", linewidth=1, label="scheduled = offered"
    )
    for group, marker, name in (
        (steps, "o-", "steps"),
        (overload, "s", "overload (admission control)"),
    ):
        if group:
            left.plot(
                [w["offered_rate"] for w in group],
                [w["scheduled_per_s_window"] for w in group],
                marker,
                label=name,
            )
    failed = [w for w in steps if not w.get("sustained")]
    if failed:  # marked, not labelled: the refining steps lie close together
        left.plot(
            [w["offered_rate"] for w in failed],
            [w["scheduled_per_s_window"] for w in failed],
            "x",
            color="crimson",
            markersize=9,
            label="step not sustained",
        )
    if knee["knee"]:
        left.axvline(knee["knee"], color="crimson", linewidth=1, linestyle="--")
        left.axhline(0.9 * knee["knee"], color="crimson", linewidth=0.6, linestyle=":")
        left.text(knee["knee"], 0, f" knee {knee['knee']:g}/s", color="crimson", va="bottom")
    left.set_xlabel("offered (requests/s)")
    left.set_ylabel("scheduled deliveries/s")
    left.set_title("Throughput vs offered rate")
    left.legend(fontsize=8)
    for group, marker, name in ((steps, "o-", "steps"), (overload, "s", "overload")):
        if group:
            right.plot(
                [w["offered_rate"] for w in group],
                [w["e2e_p99_ms"] for w in group],
                marker,
                label=f"{name}: end-to-end p99",
            )
            right.plot(
                [w["offered_rate"] for w in group],
                [w["ingestion_p99_ms"] for w in group],
                marker,
                alpha=0.5,
                label=f"{name}: ingestion p99",
            )
    limit = knee["plan"]["p99_limit_ms"]
    right.axhline(limit, color="crimson", linewidth=1, linestyle=":")
    right.set_yscale("log")
    right.set_xlabel("offered (requests/s)")
    right.set_ylabel("ms")
    right.set_title("p99 latency vs offered rate")
    right.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _stacked(axis: Any, labels: list[str], windows: list[dict[str, Any]]) -> None:
    import matplotlib.pyplot as plt

    names = sorted(
        {name for w in windows for name in w["cpu_ms_per_delivery"]},
        key=lambda n: PROCESS_ORDER.index(n) if n in PROCESS_ORDER else len(PROCESS_ORDER),
    )
    # tab20's strong colours first, then its light ones: eleven processes and more, none twice.
    colours = plt.get_cmap("tab20")
    bottoms = [0.0] * len(windows)
    for n, name in enumerate(names):
        heights = [w["cpu_ms_per_delivery"].get(name, 0.0) for w in windows]
        colour = colours(2 * n % 20 + n // 10 % 2)
        axis.bar(labels, heights, bottom=bottoms, label=name, color=colour)
        bottoms = [b + h for b, h in zip(bottoms, heights, strict=True)]
    for x, total in enumerate(bottoms):
        axis.text(x, total, f"{total:.1f}", ha="center", va="bottom", fontsize=8)
    axis.set_ylim(0, max(bottoms, default=0.0) * 1.08 or 1.0)  # room for the totals
    axis.tick_params(axis="x", labelrotation=30, labelsize=8)


def _cpu(report: dict[str, Any], path: Path) -> Path:
    import matplotlib.pyplot as plt

    knee = report["knee"]
    windows = [*knee["steps"], *knee["overload"]]
    rows = (report.get("tracing") or {}).get("rows") or {}
    fig, axes = plt.subplots(
        1,
        2 if rows else 1,
        figsize=(13 if rows else 9, 5.5),
        squeeze=False,
        gridspec_kw={"width_ratios": [max(1, len(windows)), max(1, len(rows))] if rows else [1]},
    )
    left = axes[0][0]
    _stacked(left, [f"{w['label']}\n{w['offered_rate']:g}/s" for w in windows], windows)
    left.set_ylabel("CPU ms per scheduled delivery")
    left.set_title("CPU per process per delivery (first request → last scheduled)")
    if rows:
        right = axes[0][1]
        _stacked(right, list(rows), list(rows.values()))
        right.set_title(f"Tracing rows at {report['tracing']['rate']:g}/s")
        right.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    else:
        left.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
