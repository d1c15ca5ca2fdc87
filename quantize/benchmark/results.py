"""results.json, results.csv and results.md of ``edgekit bench``.

results.json (``schema`` = "edgekit-bench/1")::

    schema: "edgekit-bench/1"
    created: ISO 8601 time (UTC)
    command: [argv of the edgekit run]
    host: {hostname, platform, python, edgekit}          # where edgekit ran (not the target)
    settings: {runs, min_seconds, max_seconds, warmup_runs, warmup_seconds, fps, pace_seconds,
               stride (null: each manifest's default), camera: [h, w], max_clips}
    targets: {NAME: {config: the devices.toml entry (name, transport, host, user, port, python,
                                threads, delegate, variant, power, ...),
                     machine: {hostname, machine, system, platform, cpu, cpu_count, memory_mb,
                               python, numpy, opencv, edgekit, runtime: {module, package,
                               version}, l4t?, board?}}}
    records: [one per target x artifact:
      target, artifact, model_dir, name, backbone, method, sparsity, clip_length,
      input: [h, w], frame_role ("frame" | "frame_edgetpu"),
      params: {frame, head, clip, blocks: {backbone, spatial, temporal, ..., total}} | null
              (from the artifact's report.json; null when absent),
      size: {ROLE: {raw_bytes, gzip_bytes}}, deployed: {raw_bytes, gzip_bytes} (frame role +
            head: what the camera loads),
      latency: {ROLE: {model, device, threads, init_ms, first_inference_ms,
                       warmup: {count, mean_ms, ..., seconds}, seconds (timed wall time),
                       count, mean_ms, std_ms, min_ms, max_ms, p50_ms, p90_ms, p99_ms}},
      placement: {ROLE: {available, nodes, delegated, cpu, delegate, partitions, ops_cpu: {op: n},
                         ops_delegated: {op: n}}},
      streaming: {stride, clip_length, frames, decisions, camera: [h, w], frame_ms (process()
                  of a frame without decision), decision_frame_ms, preprocess_ms,
                  frame_model_ms, head_ms (medians), cost_per_decision_ms, per_frame_ms,
                  max_fps},
      paced: {fps, seconds, frames_offered, frames_processed, frames_dropped, drop_rate,
              decisions, time_to_first_decision_ms, ideal_time_to_first_decision_ms,
              decision_latency_p50_ms, stride},
      accuracy: {TASK: metrics of quantize.metrics.score (accuracy, macro_f1, confusion,
                 labels, count, rank1? | mae, rmse, count)} | null,
      eval: {source, clips} | {skipped: reason},
      power: {sampler, samples, mean_mw, max_mw, energy_mj_per_inference} | null (no sampler:
             absent, never estimated),
      peak_rss_mb: peak resident memory of the target's bench process for this artifact,
      device_seconds: time the target spent on this artifact]

Times are milliseconds unless the key says seconds; sizes are bytes.
"""

import csv
import datetime
import io
import json
import os
import platform

from quantize.benchmark.evalset import headline

SCHEMA = "edgekit-bench/1"


def host_info():
    import edge
    return {"hostname": platform.node(), "platform": platform.platform(),
            "python": platform.python_version(), "edgekit": edge.__version__}


def now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def load_results(path):
    """A results.json (or a --out folder holding one), checked to be edgekit bench output."""
    from edge.errors import EdgekitError

    path = os.fspath(path)
    if os.path.isdir(path):
        path = os.path.join(path, "results.json")
    if not os.path.isfile(path):
        raise EdgekitError("no benchmark results at %s; give a results.json or the --out folder "
                           "of 'edgekit bench'" % path)
    try:
        with open(path) as handle:
            data = json.load(handle)
    except (OSError, ValueError) as exc:
        raise EdgekitError("%s is not valid JSON (%s)" % (path, exc))
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise EdgekitError("%s is not edgekit bench output (schema %r, expected %r)"
                           % (path, data.get("schema") if isinstance(data, dict) else None,
                              SCHEMA))
    return data


def _get(record, *keys):
    value = record
    for key in keys:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


def tasks_of(records):
    names = []
    for record in records:
        for name in headline(record.get("accuracy")):
            if name not in names:
                names.append(name)
    return names


CSV_FIELDS = [
    ("target", ("target",)), ("emulated", ("emulated",)),
    ("artifact", ("artifact",)), ("method", ("method",)),
    ("backbone", ("backbone",)), ("frame_role", ("frame_role",)),
    ("params_total", ("params", "blocks", "total")),
    ("deployed_raw_bytes", ("deployed", "raw_bytes")),
    ("deployed_gzip_bytes", ("deployed", "gzip_bytes")),
]


def csv_rows(data):
    records = data["records"]
    tasks = tasks_of(records)
    header = [name for name, _ in CSV_FIELDS]
    roles = []
    for record in records:
        for role in record.get("latency", {}):
            if role not in roles:
                roles.append(role)
    for role in roles:
        header += ["%s_%s" % (role, k) for k in ("raw_bytes", "gzip_bytes", "init_ms",
                                                 "first_inference_ms", "runs", "p50_ms",
                                                 "p90_ms", "p99_ms", "mean_ms", "std_ms",
                                                 "min_ms", "nodes", "delegated_nodes")]
    header += ["stride", "frame_model_ms", "head_ms", "cost_per_decision_ms", "max_fps",
               "paced_fps", "paced_dropped", "paced_offered", "time_to_first_decision_ms",
               "peak_rss_mb", "power_mean_mw", "energy_mj_per_inference", "eval_clips"]
    header += ["%s_%s" % (t, "score") for t in tasks]
    rows = [header]
    for record in records:
        row = [_get(record, *keys) for _, keys in CSV_FIELDS]
        for role in roles:
            lat = _get(record, "latency", role) or {}
            size = _get(record, "size", role) or {}
            where = _get(record, "placement", role) or {}
            row += [size.get("raw_bytes"), size.get("gzip_bytes"), lat.get("init_ms"),
                    lat.get("first_inference_ms"), lat.get("count"), lat.get("p50_ms"),
                    lat.get("p90_ms"), lat.get("p99_ms"), lat.get("mean_ms"), lat.get("std_ms"),
                    lat.get("min_ms"), where.get("nodes"), where.get("delegated")]
        row += [_get(record, "streaming", "stride"), _get(record, "streaming", "frame_model_ms"),
                _get(record, "streaming", "head_ms"),
                _get(record, "streaming", "cost_per_decision_ms"),
                _get(record, "streaming", "max_fps"), _get(record, "paced", "fps"),
                _get(record, "paced", "frames_dropped"), _get(record, "paced", "frames_offered"),
                _get(record, "paced", "time_to_first_decision_ms"), record.get("peak_rss_mb"),
                _get(record, "power", "mean_mw"), _get(record, "power", "energy_mj_per_inference"),
                _get(record, "eval", "clips")]
        scores = headline(record.get("accuracy"))
        row += [scores.get(t) for t in tasks]
        rows.append(row)
    return rows


def write_csv(path, data):
    from quantize.fsutil import write_text
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for row in csv_rows(data):
        writer.writerow(["" if v is None else (round(v, 6) if isinstance(v, float) else v)
                         for v in row])
    write_text(path, buffer.getvalue())


def _fmt(value, spec="%.2f"):
    return "-" if value is None else spec % value


def markdown_table(data):
    """A table like Ultralytics' benchmark table: one row per target x artifact."""
    records = data["records"]
    tasks = tasks_of(records)
    header = (["Target", "Artifact", "Method", "Size (KB)", "gzip (KB)", "Params"]
              + ["%s" % t for t in tasks]
              + ["Frame p50 (ms)", "Head p50 (ms)", "Clip p50 (ms)", "Decision (ms)",
                 "Max FPS", "Dropped @fps", "First decision (ms)", "Delegated nodes",
                 "Peak RSS (MB)", "Energy (mJ/inf)"])
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for r in records:
        role = r.get("frame_role", "frame")
        scores = headline(r.get("accuracy"))
        where = _get(r, "placement", role) or {}
        delegated = "-" if where.get("nodes") is None else "%d/%d %s" % (
            where["delegated"], where["nodes"], where.get("delegate", ""))
        paced = r.get("paced") or {}
        dropped = "-" if not paced else "%d/%d @%g" % (paced["frames_dropped"],
                                                      paced["frames_offered"], paced["fps"])
        cells = [r["target"] + (" (emulated)" if r.get("emulated") else ""),
                 r["artifact"], r.get("method", "-"),
                 _fmt(_get(r, "deployed", "raw_bytes") and
                      _get(r, "deployed", "raw_bytes") / 1024.0, "%.1f"),
                 _fmt(_get(r, "deployed", "gzip_bytes") and
                      _get(r, "deployed", "gzip_bytes") / 1024.0, "%.1f"),
                 _fmt(_get(r, "params", "blocks", "total"), "%d")]
        for t in tasks:
            value = scores.get(t)
            is_mae = "mae" in ((r.get("accuracy") or {}).get(t) or {})
            cells.append(_fmt(value, "MAE %.2f" if is_mae else "%.3f"))
        cells += [_fmt(_get(r, "latency", role, "p50_ms"), "%.3f"),
                  _fmt(_get(r, "latency", "head", "p50_ms"), "%.3f"),
                  _fmt(_get(r, "latency", "clip", "p50_ms"), "%.3f"),
                  _fmt(_get(r, "streaming", "cost_per_decision_ms"), "%.3f"),
                  _fmt(_get(r, "streaming", "max_fps"), "%.1f"), dropped,
                  _fmt(paced.get("time_to_first_decision_ms"), "%.1f"), delegated,
                  _fmt(r.get("peak_rss_mb"), "%.1f"),
                  _fmt(_get(r, "power", "energy_mj_per_inference"), "%.2f")]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    notes = ["", "Size: frame model the target runs + head (what the camera loads). Decision: "
             "runner cost per decision at the stride (%s), camera frames %s. Accuracy: on the "
             "target, scored on the host (`quantize.metrics.score`)." % (
                 ", ".join(sorted({str(_get(r, "streaming", "stride")) for r in records})),
                 "x".join(str(v) for v in data["settings"]["camera"]))]
    for name, target in sorted(data.get("targets", {}).items()):
        machine = target.get("machine") or {}
        runtime = machine.get("runtime") or {}
        notes.append("Target %s: %s, %s, %s CPUs, Python %s, %s %s, threads %s, delegate %s." % (
            name, machine.get("cpu", "?"), machine.get("machine", "?"),
            machine.get("cpu_count", "?"), machine.get("python", "?"),
            runtime.get("package", "?"), runtime.get("version", "?"),
            target["config"].get("threads") or "auto", target["config"].get("delegate")))
    return "\n".join(lines + notes) + "\n"


def write_all(out, data, progress=None):
    """results.json, results.csv, results.md and pareto.png into ``out``; returns the paths."""
    from quantize.benchmark.plot import pareto_plot
    from quantize.fsutil import write_json, write_text

    os.makedirs(out, exist_ok=True)
    paths = {"json": os.path.join(out, "results.json"), "csv": os.path.join(out, "results.csv"),
             "md": os.path.join(out, "results.md"), "png": os.path.join(out, "pareto.png")}
    write_json(paths["json"], data)
    write_csv(paths["csv"], data)
    write_text(paths["md"], markdown_table(data))
    if not pareto_plot(data, paths["png"]):
        paths.pop("png")
        if progress:
            progress("no Pareto plot: no record has both accuracy and latency")
    return paths
