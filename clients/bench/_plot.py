"""The PNG: the latency percentile spectrum of every level, and each level's per-second timeline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["write_plot"]

_TICKS = (50.0, 90.0, 99.0, 99.9, 99.99, 99.999)


def _tail_x(percentile: float) -> float:
    # The usual HDR axis: 1 / (1 - p), on a log scale, so each extra "9" of the tail gets the same width.
    return 1.0 / max(1.0 - percentile / 100.0, 1e-7)


def write_plot(document: dict[str, Any], path: Path) -> None:
    """Render ``document`` (``to_json``'s output) to ``path`` as PNG."""
    import matplotlib

    matplotlib.use("Agg")  # no display here, and none needed
    import matplotlib.pyplot as plt

    figure, (spectrum, timeline) = plt.subplots(1, 2, figsize=(14, 5.5), constrained_layout=True)
    throughput_axis = timeline
    latency_axis = timeline.twinx()
    for index, level in enumerate(document["levels"]):
        colour = f"C{index % 10}"
        points = level["spectrum"]
        if points:
            spectrum.plot(
                [_tail_x(p) for p, _ in points], [v / 1000 for _, v in points], color=colour, label=level["level"]
            )
        seconds = level["timeline"]
        x = [s["second"] for s in seconds]
        throughput_axis.plot(x, [s["ok"] * document["batch"] for s in seconds], color=colour, label=level["level"])
        latency_axis.plot(x, [s["p99_us"] / 1000 for s in seconds], color=colour, linestyle="--", alpha=0.7)
    spectrum.set_xscale("log")
    spectrum.set_xticks([_tail_x(p) for p in _TICKS], [f"{p:g}%" for p in _TICKS])
    spectrum.set_xlim(left=1.0)
    spectrum.set_yscale("log")
    spectrum.set_xlabel("percentile")
    spectrum.set_ylabel("latency (ms)")
    measured_from = document["latency_measured_from"]
    spectrum.set_title(f"latency by percentile (from {measured_from})")
    spectrum.grid(True, which="both", alpha=0.3)
    spectrum.legend(title="level")
    throughput_axis.set_xlabel("second of the measurement")
    throughput_axis.set_ylabel("inferences per second (solid)")
    latency_axis.set_ylabel("p99 latency, ms (dashed)")
    throughput_axis.set_title("timeline")
    throughput_axis.grid(True, alpha=0.3)
    throughput_axis.legend(title="level", loc="lower left")
    mode = document["mode"] + " loop" + (f", {document['arrival']} arrivals" if document["mode"] == "open" else "")
    figure.suptitle(
        f"conduit bench: {document['model']} on {document['target']} — {mode}, batch {document['batch']}"
        + (", streaming" if document["streaming"] else "")
    )
    figure.savefig(path, dpi=110)
    plt.close(figure)
