"""The Pareto plot of a benchmark: latency per decision vs accuracy, marker area = model size.

One colour per target, one labelled point per artifact; the points no other point beats on both
latency and accuracy (the Pareto front) are joined by a line per target.
"""

import math


def primary_score(record):
    """Mean accuracy over the classification tasks of a record, or None."""
    accuracy = record.get("accuracy") or {}
    values = [m["accuracy"] for m in accuracy.values()
              if isinstance(m, dict) and m.get("accuracy") is not None]
    return sum(values) / len(values) if values else None


def latency_of(record):
    streaming = record.get("streaming") or {}
    return streaming.get("cost_per_decision_ms")


def pareto_front(points):
    """Indices of ``points`` [(latency, score)] not dominated (lower latency, higher score)."""
    front = []
    for i, (lat, acc) in enumerate(points):
        dominated = any((l2 <= lat and a2 >= acc) and (l2 < lat or a2 > acc)
                        for j, (l2, a2) in enumerate(points) if j != i)
        if not dominated:
            front.append(i)
    return sorted(front, key=lambda i: points[i][0])


def pareto_plot(data, path):
    """Write the PNG; False (nothing written) when no record has latency and accuracy."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from quantize.fsutil import atomic_path

    records = [r for r in data["records"]
               if latency_of(r) is not None and primary_score(r) is not None]
    if not records:
        return False
    fig, ax = plt.subplots(figsize=(7.5, 5), dpi=120)
    targets = sorted({r["target"] for r in records})
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    sizes = [max((r.get("deployed") or {}).get("raw_bytes") or 1, 1) for r in records]
    biggest = max(sizes)
    for t, target in enumerate(targets):
        mine = [r for r in records if r["target"] == target]
        points = [(latency_of(r), primary_score(r)) for r in mine]
        area = [40 + 900 * math.sqrt(max((r.get("deployed") or {}).get("raw_bytes") or 1, 1)
                                     / float(biggest)) for r in mine]
        colour = colours[t % len(colours)]
        ax.scatter([p[0] for p in points], [p[1] for p in points], s=area, alpha=0.55,
                   color=colour, edgecolors="black", linewidths=0.6)
        ax.scatter([], [], s=50, alpha=0.55, color=colour, edgecolors="black", linewidths=0.6,
                   label=target + (" (emulated)" if mine[0].get("emulated") else ""))
        # (the marker above is a small legend entry, whatever the sizes)
        for r, (x, y) in zip(mine, points):
            kb = ((r.get("deployed") or {}).get("raw_bytes") or 0) / 1024.0
            ax.annotate("%s (%.0f KB)" % (r["artifact"], kb), (x, y), textcoords="offset points",
                        xytext=(6, 6), fontsize=8)
        front = pareto_front(points)
        if len(front) > 1:
            ax.plot([points[i][0] for i in front], [points[i][1] for i in front], "--",
                    color=colour, linewidth=1)
    lat = [latency_of(r) for r in records]
    if min(lat) > 0 and max(lat) / min(lat) > 20:
        ax.set_xscale("log")
    ax.set_xlabel("latency per decision (ms, streaming runner)")
    ax.set_ylabel("accuracy (mean over classification tasks)")
    ax.set_title("edgekit bench: latency vs accuracy (marker area ~ model size)")
    ax.grid(True, alpha=0.3)
    ax.margins(0.15)
    ax.legend(title="target", loc="best", fontsize=8)
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return True
