"""The trade-off picture of a benchmark: accuracy against latency per decision and against size.

One marker per method x target (colour = method, shape = target, area ~ deployed bytes), the
Pareto frontier (the points no other point beats on both axes) drawn over all of them, labels
naming the artifact and its size placed where they overlap nothing (:func:`place_labels`). Left
panel: latency per decision; right panel: deployed size. One row per task (classification
accuracy, or a regression task's MAE, where lower is better), or only the task asked for.

The plotted numbers are written beside the PNG (``pareto.json``, :func:`plot_data`), so a test
or a user can check that the picture shows the measurements of results.json.

Optional: matplotlib is imported only when a plot is drawn, and comes with the ``plot`` extra,
so a board with ``edgekit[device,bench]`` benches without it (:func:`why_no_plot` says so).
"""

import io

from edge.bench.evalset import headline

# offsets (points) tried in order for a label, relative to its marker's centre
LABEL_OFFSETS = [(1, 1), (1, -1), (-1, 1), (-1, -1), (0, 1.6), (0, -1.6), (1.8, 0), (-1.8, 0),
                 (1, 2.4), (1, -2.4), (-1, 2.4), (-1, -2.4), (2.2, 2.2), (2.2, -2.2),
                 (-2.2, 2.2), (-2.2, -2.2), (1, 3.6), (1, -3.6), (-1, 3.6), (-1, -3.6)]


def primary_score(record):
    """Mean accuracy over the classification tasks of a record, or None."""
    accuracy = record.get("accuracy") or {}
    values = [m["accuracy"] for m in accuracy.values()
              if isinstance(m, dict) and m.get("accuracy") is not None]
    return sum(values) / len(values) if values else None


def latency_of(record):
    streaming = record.get("streaming") or {}
    return streaming.get("cost_per_decision_ms")


def pareto_front(points, higher_is_better=True):
    """Indices of ``points`` [(cost, score)] not dominated (lower cost, better score), by cost."""
    sign = 1 if higher_is_better else -1
    front = []
    for i, (c, s) in enumerate(points):
        dominated = any(c2 <= c and sign * s2 >= sign * s and (c2 < c or sign * s2 > sign * s)
                        for j, (c2, s2) in enumerate(points) if j != i)
        if not dominated:
            front.append(i)
    return sorted(front, key=lambda i: points[i][0])


def plottable(data):
    """The records a plot can place: a latency per decision and a task score."""
    return [r for r in data["records"]
            if latency_of(r) is not None and any(v is not None
                                                 for v in headline(r.get("accuracy")).values())]


def tasks_plotted(data, task=None):
    """The tasks drawn: ``task`` alone, else every task with a score, in results order."""
    names = []
    for r in plottable(data):
        for name, value in headline(r.get("accuracy")).items():
            if value is not None and name not in names:
                names.append(name)
    if task is None:
        return names
    if task not in names:
        from edge.errors import EdgekitError
        raise EdgekitError("--plot-task %s: no record has a score for it (tasks: %s)"
                           % (task, ", ".join(names) or "none"))
    return [task]


def why_no_plot(data):
    """None when :func:`pareto_plot` can draw ``data``, else the reason in a few words."""
    if not plottable(data):
        return "no record has both accuracy and latency per decision"
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return "matplotlib is not installed (pip install 'edgekit[plot]')"
    return None


def _is_mae(record, task):
    return "mae" in (((record.get("accuracy") or {}).get(task)) or {})


def plot_data(data, task=None):
    """What the plot shows: {"panels": [{task, x, y, higher_is_better, points: [...]}]}.

    Every point carries the record's own numbers (latency per decision, deployed bytes, the
    task's score), and ``on_front`` when it is on that panel's Pareto frontier.
    """
    panels = []
    for name in tasks_plotted(data, task):
        records = [r for r in plottable(data) if headline(r.get("accuracy")).get(name)
                   is not None]
        mae = any(_is_mae(r, name) for r in records)
        for x in ("latency_ms", "deployed_bytes"):
            points = [{"target": r["target"], "artifact": r["artifact"],
                       "method": r.get("method"), "emulated": bool(r.get("emulated")),
                       "latency_ms": latency_of(r),
                       "deployed_bytes": (r.get("deployed") or {}).get("raw_bytes") or 0,
                       "score": headline(r.get("accuracy"))[name]} for r in records]
            front = pareto_front([(p[x], p["score"]) for p in points], not mae)
            for i, p in enumerate(points):
                p["on_front"] = i in front
            panels.append({"task": name, "x": x, "y": "mae" if mae else "accuracy",
                           "higher_is_better": not mae, "front": front, "points": points})
    return {"panels": panels}


def _overlaps(box, boxes):
    return any(box.overlaps(other) for other in boxes)


def _overlap_area(box, boxes):
    total = 0.0
    for other in boxes:
        w = min(box.x1, other.x1) - max(box.x0, other.x0)
        h = min(box.y1, other.y1) - max(box.y0, other.y0)
        if w > 0 and h > 0:
            total += w * h
    return total


def _annotate(ax, text, xy, offset, radius, leader=False):
    dx, dy = offset
    return ax.annotate(
        text, xy, textcoords="offset points", xytext=(dx * (radius + 4), dy * (radius + 4)),
        fontsize=8, ha="left" if dx > 0 else ("right" if dx < 0 else "center"),
        va="bottom" if dy > 0 else ("top" if dy < 0 else "center"), zorder=4,
        bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.8),
        arrowprops=dict(arrowstyle="-", color="0.45", lw=0.7, shrinkA=0, shrinkB=radius)
        if leader else None)


def place_labels(ax, renderer, items, obstacles):
    """Deterministic label placement: for each (text, (x, y), radius_pt) in order, try
    :data:`LABEL_OFFSETS` (scaled by the marker's radius) and keep the first whose box overlaps
    no label already placed, no marker (``obstacles``, display boxes) and stays inside the
    axes; when none fits, the one overlapping the least (labels weigh 4x markers, and leaving
    the axes is penalised). A thin leader joins each label to its marker, so a
    label pushed away still names the right point. Returns the chosen offsets."""
    placed, chosen_offsets = [], []
    inside = ax.get_window_extent(renderer)
    for text, xy, radius in items:
        chosen, least = None, None
        for offset in LABEL_OFFSETS:
            trial = _annotate(ax, text, xy, offset, radius)
            box = trial.get_window_extent(renderer).expanded(1.08, 1.6)
            trial.remove()
            outside = box.width * box.height - _overlap_area(box, [inside])
            cost = 4 * _overlap_area(box, placed) + _overlap_area(box, obstacles) + 2 * outside
            if cost == 0:
                chosen = offset
                break
            if least is None or cost < least[0]:
                least = (cost, offset)
        chosen = chosen or least[1]
        final = _annotate(ax, text, xy, chosen, radius, leader=True)
        placed.append(final.get_window_extent(renderer))
        chosen_offsets.append(chosen)
    return chosen_offsets


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _label(point, several_targets):
    kb = point["deployed_bytes"] / 1024.0
    name = point["artifact"]
    if point.get("method") and point["method"] != name.split("/")[-1]:
        name = "%s [%s]" % (name, point["method"])
    if several_targets:
        name = "%s @%s" % (name, point["target"])
    return "%s, %s" % (name, ("%.0f KiB" % kb) if kb < 10240 else ("%.1f MiB" % (kb / 1024)))


def _draw_panel(ax, panel, style, biggest):
    """One panel: markers, the Pareto frontier (a step line: what the best point at or under
    a given cost achieves), axes; returns [(label item)], [marker display boxes]."""
    import math

    pts, x = panel["points"], panel["x"]
    xs = [p[x] if x == "latency_ms" else p[x] / 1024.0 for p in pts]
    ys = [p["score"] for p in pts]
    areas = [50 + 900 * p["deployed_bytes"] / float(biggest or 1) for p in pts]
    for p, xv, yv, area in zip(pts, xs, ys, areas):
        colour, marker = style[("m", p["method"] or p["artifact"])], style[("t", p["target"])]
        ax.scatter([xv], [yv], s=area, color=colour, marker=marker, alpha=0.6,
                   edgecolors="black", linewidths=1.4 if p["on_front"] else 0.5, zorder=3)
    if min(xs) > 0 and max(xs) / min(xs) > 20:
        ax.set_xscale("log")
    _limits(ax, xs, ys)
    _frontier(ax, [(xs[i], ys[i]) for i in panel["front"]], panel["higher_is_better"])
    ax.set_xlabel("latency per decision (ms, streaming runner)" if x == "latency_ms"
                  else "deployed size (KiB: frame model + head)")
    better = "higher" if panel["higher_is_better"] else "lower"
    ax.set_ylabel("%s %s (%s is better)" % (panel["task"], panel["y"], better))
    ax.grid(True, alpha=0.3)
    return [(xv, yv, math.sqrt(a) / 2.0) for xv, yv, a in zip(xs, ys, areas)]


def _frontier(ax, front, higher_is_better):
    """The frontier as a staircase: from the axis edge up to the cheapest front point, then
    at each costlier front point the better score it buys, out to the right edge; a single
    front point still shows as the corner of the region it dominates."""
    (x_lo, x_hi), (y_lo, y_hi) = ax.get_xlim(), ax.get_ylim()
    worst = y_lo if higher_is_better else y_hi
    line = [(front[0][0], worst), front[0]]
    for (x, y), (_, y_before) in zip(front[1:], front[:-1]):
        line += [(x, y_before), (x, y)]
    line.append((x_hi, front[-1][1]))
    ax.plot([p[0] for p in line], [p[1] for p in line], color="0.25", linestyle="--",
            linewidth=1.2, zorder=2)
    ax.set_xlim(x_lo, x_hi)
    ax.set_ylim(y_lo, y_hi)


def _limits(ax, xs, ys):
    """Room for the markers and their labels: 30 % margins (a single value gets +-5 %)."""
    def span(values, log=False):
        lo, hi = min(values), max(values)
        if log:
            return lo / 1.6, hi * 1.6
        pad = (hi - lo) * 0.3 or abs(hi) * 0.05 or 0.05
        return (lo - pad if lo - pad > 0 or lo < 0 else 0.0), hi + pad
    ax.set_xlim(*span(xs, ax.get_xscale() == "log"))
    ax.set_ylim(*span(ys))


def _style(points):
    import matplotlib.pyplot as plt
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    markers = ["o", "s", "^", "D", "v", "P", "X"]
    style = {}
    for p in points:
        key = ("m", p["method"] or p["artifact"])
        if key not in style:
            style[key] = colours[sum(1 for k in style if k[0] == "m") % len(colours)]
        key = ("t", p["target"])
        if key not in style:
            style[key] = markers[sum(1 for k in style if k[0] == "t") % len(markers)]
    return style


def _legend(ax, style, points):
    from matplotlib.lines import Line2D
    emulated = {p["target"] for p in points if p["emulated"]}
    handles = [Line2D([], [], marker="o", linestyle="", color=c, markersize=8, label=k[1])
               for k, c in style.items() if k[0] == "m"]
    handles += [Line2D([], [], marker=m, linestyle="", color="0.5", markersize=8,
                       label="target %s%s" % (k[1], " (emulated)" if k[1] in emulated else ""))
                for k, m in style.items() if k[0] == "t"]
    handles.append(Line2D([], [], color="0.25", linestyle="--", label="Pareto frontier"))
    ax.legend(handles=handles, fontsize=8, loc="best", framealpha=0.85)


def pareto_plot(data, path, task=None):
    """Write the PNG and ``pareto.json`` beside it (atomically); False (nothing written) when
    :func:`why_no_plot` says why. Returns True."""
    if why_no_plot(data):
        return False
    plt = _pyplot()
    shown = plot_data(data, task)
    panels = shown["panels"]
    rows = len(panels) // 2
    fig, axes = plt.subplots(rows, 2, figsize=(13, 4.6 * rows + 0.6), dpi=110, squeeze=False)
    every = [p for panel in panels for p in panel["points"]]
    style = _style(every)
    biggest = max(p["deployed_bytes"] for p in every)
    several = len({p["target"] for p in every}) > 1
    placed = []
    for panel, ax in zip(panels, axes.ravel()):
        placed.append((ax, panel, _draw_panel(ax, panel, style, biggest)))
    for ax in axes[:, 0]:
        _legend(ax, style, every)
    fig.suptitle("edgekit bench: the trade-off (marker area ~ deployed bytes; thick edge = on "
                 "the Pareto frontier)", fontsize=11)
    fig.tight_layout()
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    for ax, panel, markers in placed:
        boxes = [_marker_box(ax, x, y, r) for x, y, r in markers]
        items = [(_label(p, several), (x, y), r)
                 for p, (x, y, r) in zip(panel["points"], markers)]
        place_labels(ax, renderer, items, boxes)
    save_figure(plt, fig, path, "pareto.json", shown)
    return True


def save_figure(plt, fig, path, data_name, data):
    """Write ``fig`` to ``path`` and the numbers it shows to ``data_name`` beside it, both
    atomically: the JSON is what tests (and users) compare with results.json."""
    import json
    import os

    from edge.atomic import write_bytes, write_text

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    write_bytes(path, buffer.getvalue())
    write_text(os.path.join(os.path.dirname(os.path.abspath(path)), data_name),
               json.dumps(data, indent=1))


def _marker_box(ax, x, y, radius_pt):
    from matplotlib.transforms import Bbox
    cx, cy = ax.transData.transform((x, y))
    r = radius_pt * ax.figure.dpi / 72.0
    return Bbox([[cx - r, cy - r], [cx + r, cy + r]])
