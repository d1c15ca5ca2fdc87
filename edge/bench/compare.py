"""``edgekit bench compare A B``: two benchmark runs side by side, with ratios B/A.

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


def compare_table(a, b, label_a="A", label_b="B"):
    from edge.errors import EdgekitError

    matched = pairs(a, b)
    if not matched:
        raise EdgekitError("the two runs share no (target, artifact) record: A has %s, B has %s"
                           % (", ".join("%s/%s" % (r["target"], r["artifact"])
                                        for r in a["records"]) or "none",
                              ", ".join("%s/%s" % (r["target"], r["artifact"])
                                        for r in b["records"]) or "none"))
    lines = []
    for ra, rb in matched:
        lines.append("%s/%s  vs  %s/%s" % (ra["target"], ra["artifact"], rb["target"],
                                           rb["artifact"]))
        lines.append("  %-22s %14s %14s %9s" % ("metric", label_a, label_b, "B/A"))
        rows = list(ROWS)
        for task in sorted(set(headline(ra.get("accuracy"))) | set(headline(rb.get("accuracy")))):
            rows.append(("%s score" % task,
                         lambda r, t=task: headline(r.get("accuracy")).get(t)))
        for name, get in rows:
            va, vb = get(ra), get(rb)
            if va is None and vb is None:
                continue
            ratio = "%.3f" % (vb / va) if va not in (None, 0) and vb is not None else "-"
            lines.append("  %-22s %14s %14s %9s" % (name, _cell(va), _cell(vb), ratio))
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"
