"""``edgekit bench compare A B``: two benchmark runs side by side, with ratios B/A, and
(``--plot``) the same as paired bars.

Records are matched by (target, artifact); when both runs hold exactly one record each they are
compared even if the names differ (e.g. the same artifact on two targets).
"""

from edge.bench.evalset import headline

ROWS = [
    ("frame p50 (ms)", lambda r: (r.get("latency", {}).get(r.get("frame_role", "frame"))
                                  or {}).get("p50_ms")),
    ("frame p99 (ms)", lambda r: (r.get("latency", {}).get(r.get("frame_role", "frame"))
                                  or {}).get("p99_ms")),
    ("head p50 (ms)", lambda r: (r.get("latency", {}).get("head") or {}).get("p50_ms")),
    ("clip p50 (ms)", lambda r: (r.get("latency", {}).get("clip") or {}).get("p50_ms")),
    ("per decision (ms)", lambda r: (r.get("streaming") or {}).get("cost_per_decision_ms")),
    ("max fps", lambda r: (r.get("streaming") or {}).get("max_fps")),
    ("dropped @fps", lambda r: (r.get("paced") or {}).get("frames_dropped")),
    ("first decision (ms)", lambda r: (r.get("paced") or {}).get("time_to_first_decision_ms")),
    ("peak RSS (MB)", lambda r: r.get("peak_rss_mb")),
    ("size (KB)", lambda r: ((r.get("deployed") or {}).get("raw_bytes") or 0) / 1024.0
     if r.get("deployed") else None),
    ("size gzip (KB)", lambda r: ((r.get("deployed") or {}).get("gzip_bytes") or 0) / 1024.0
     if r.get("deployed") else None),
    ("energy (mJ/inf)", lambda r: (r.get("power") or {}).get("energy_mj_per_inference")),
]


HIGHER_IS_BETTER = {"max fps"}


def pairs(a, b):
    index_b = {(r["target"], r["artifact"]): r for r in b["records"]}
    matched = [(ra, index_b[(ra["target"], ra["artifact"])]) for ra in a["records"]
               if (ra["target"], ra["artifact"]) in index_b]
    if not matched and len(a["records"]) == 1 and len(b["records"]) == 1:
        matched = [(a["records"][0], b["records"][0])]
    return matched


def _cell(value):
    if value is None:
        return "-"
    if isinstance(value, int):
        return "%d" % value
    return "%.4g" % value


def _matched(a, b):
    from edge.errors import EdgekitError

    matched = pairs(a, b)
    if not matched:
        raise EdgekitError("the two runs share no (target, artifact) record: A has %s, B has %s"
                           % (", ".join("%s/%s" % (r["target"], r["artifact"])
                                        for r in a["records"]) or "none",
                              ", ".join("%s/%s" % (r["target"], r["artifact"])
                                        for r in b["records"]) or "none"))
    return matched


def compare_rows(a, b):
    """[{"a": "target/artifact", "b": ..., "rows": [{metric, a, b, ratio, higher_is_better}]}]:
    what the table prints and the picture draws, one entry per matched record pair."""
    result = []
    for ra, rb in _matched(a, b):
        rows = list(ROWS)
        for task in sorted(set(headline(ra.get("accuracy"))) | set(headline(rb.get("accuracy")))):
            rows.append(("%s score" % task,
                         lambda r, t=task: headline(r.get("accuracy")).get(t)))
        entry = {"a": "%s/%s" % (ra["target"], ra["artifact"]),
                 "b": "%s/%s" % (rb["target"], rb["artifact"]), "rows": []}
        for name, get in rows:
            va, vb = get(ra), get(rb)
            if va is None and vb is None:
                continue
            mae = name.endswith(" score") and "mae" in ((ra.get("accuracy") or {}).get(
                name[:-len(" score")]) or {})
            entry["rows"].append({
                "metric": name, "a": va, "b": vb,
                "ratio": vb / va if va not in (None, 0) and vb is not None else None,
                "higher_is_better": (name in HIGHER_IS_BETTER or name.endswith(" score"))
                and not mae})
        result.append(entry)
    return result


def compare_table(a, b, label_a="A", label_b="B"):
    lines = []
    for entry in compare_rows(a, b):
        lines.append("%s  vs  %s" % (entry["a"], entry["b"]))
        lines.append("  %-22s %14s %14s %9s" % ("metric", label_a, label_b, "B/A"))
        for row in entry["rows"]:
            ratio = "-" if row["ratio"] is None else "%.3f" % row["ratio"]
            lines.append("  %-22s %14s %14s %9s" % (row["metric"], _cell(row["a"]),
                                                     _cell(row["b"]), ratio))
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def compare_plot(a, b, path, label_a="A", label_b="B"):
    """Paired bars per metric, B against A (A = 1: the ratio is what reads at a glance, the
    values are written on the bars; green where B is better, red where worse), one panel per
    record pair; the plotted rows go to ``compare.json`` beside the PNG. False (nothing
    written) without matplotlib."""
    try:
        from edge.bench.plot import _pyplot, save_figure
        plt = _pyplot()
    except ImportError:
        return False
    entries = compare_rows(a, b)
    heights = [0.42 * len(e["rows"]) + 1.2 for e in entries]
    fig, axes = plt.subplots(len(entries), 1, figsize=(10, sum(heights)), dpi=110,
                             squeeze=False, gridspec_kw={"height_ratios": heights})
    for entry, ax in zip(entries, axes[:, 0]):
        _pair_panel(ax, entry, label_a, label_b)
    fig.tight_layout()
    save_figure(plt, fig, path, "compare.json", entries)
    return True


def _pair_panel(ax, entry, label_a, label_b):
    rows = [r for r in entry["rows"] if r["ratio"] is not None][::-1]
    ys = range(len(rows))
    ax.barh([y + 0.2 for y in ys], [1.0] * len(rows), 0.38, color="0.7", label=label_a)
    colours = []
    for r in rows:
        better = r["ratio"] > 1 if r["higher_is_better"] else r["ratio"] < 1
        colours.append("0.45" if r["ratio"] == 1 else ("tab:green" if better else "tab:red"))
    ax.barh([y - 0.2 for y in ys], [r["ratio"] for r in rows], 0.38, color=colours)
    for y, r in zip(ys, rows):
        ax.text(1.0, y + 0.2, " %s" % _cell(r["a"]), va="center", fontsize=7)
        ax.text(r["ratio"], y - 0.2, " %s (x%.3g)" % (_cell(r["b"]), r["ratio"]), va="center",
                fontsize=7)
    ax.set_yticks(list(ys))
    ax.set_yticklabels([r["metric"] for r in rows], fontsize=8)
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_xlim(0, max([1.0] + [r["ratio"] for r in rows]) * 1.35)
    ax.set_xlabel("B / A")
    ax.set_title("%s (A)  vs  %s (B)" % (entry["a"], entry["b"]), fontsize=10)
    from matplotlib.patches import Patch
    ax.legend(handles=[Patch(color="0.7", label="%s = 1" % label_a),
                       Patch(color="tab:green", label="%s better" % label_b),
                       Patch(color="tab:red", label="%s worse" % label_b),
                       Patch(color="0.45", label="equal")], fontsize=8, loc="lower right")
