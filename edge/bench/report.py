"""results.json, results.csv and results.md of ``edgekit bench``.

results.json (``schema`` = "edgekit-bench/1")::

    schema: "edgekit-bench/1"
    created: ISO 8601 time (UTC)
    command: [argv of the edgekit run]
    host: {hostname, platform, python, edgekit}          # where edgekit ran (not the target)
    settings: {runs, min_seconds, max_seconds, warmup_runs, warmup_seconds, fps, pace_seconds,
               stride (null: each manifest's default), camera: [h, w], max_clips}
    targets: {NAME: {config: the devices.toml entry (name, transport, host, user, port, python,
                                threads, backend, backend_options, variant, power, ...),
                     machine: {hostname, machine, system, platform, cpu, cpu_count, memory_mb,
                               python, numpy, opencv, edgekit, runtime: {module, package,
                               version}, l4t?, board?}}}
    records: [one per target x artifact. A model directory (kind "model_dir"):
      target, artifact, kind, model_dir, name, backbone, method, sparsity, clip_length,
      input: [h, w], frame_role ("frame"), variant (the backend's: "tflite" | "edgetpu"),
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
      accuracy: {TASK: metrics of edge.metrics.score (accuracy, macro_f1, confusion,
                 labels, count, rank1? | mae, rmse, count)} | null,
      eval: {source, clips} | {skipped: reason},
      power: {sampler, samples, mean_mw, max_mw, energy_mj_per_inference} | null (no sampler:
             absent, never estimated),
      peak_rss_mb: peak resident memory of the target's bench process for this artifact,
      device_seconds: time the target spent on this artifact,
      profile: {frame, step, head: edge.bench.profile.model_profile (nodes, macs, op_types: {op:
               {count, macs, mac_share, est_ms}}, heaviest_nodes, p50_ms, gmac_per_s,
               delegated_nodes, partitions, delegate, timing)} | null (without --profile).
      A plain .tflite file (kind "tflite", no manifest): target, artifact, kind, model_path,
      frame_role "model", size: {model: {...}}, deployed, latency: {model: {... as above, plus
      inputs/outputs: [{name, shape, dtype}]}}, placement: {model: {...}}, streaming, paced,
      accuracy: null, eval: {skipped: why}, power, rss_before_load_mb (peak RSS before the model
      was loaded), peak_rss_mb, device_seconds]

Times are milliseconds unless the key says seconds; sizes are bytes.
"""

import csv
import datetime
import io
import json
import os
import platform

from edge.bench.evalset import headline

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
    from edge.atomic import write_text
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for row in csv_rows(data):
        writer.writerow(["" if v is None else (round(v, 6) if isinstance(v, float) else v)
                         for v in row])
    write_text(path, buffer.getvalue())


def _fmt(value, spec="%.2f"):
    return "-" if value is None else spec % value


def markdown_table(data):
    """Tables like Ultralytics' benchmark table: one row per target x artifact (model
    directories, then plain .tflite files), each followed by its notes."""
    dirs = [r for r in data["records"] if r.get("kind") != "tflite"]
    files = [r for r in data["records"] if r.get("kind") == "tflite"]
    parts = []
    if dirs or not files:
        parts.append(_model_dir_table(data, dirs))
    if files:
        parts.append(_file_table(data, files))
    notes = _target_notes(data)
    return "\n\n".join(parts) + ("\n" + notes if notes else "") + "\n"


def _file_table(data, records):
    header = ["Target", "Model", "Size (KB)", "gzip (KB)", "Inputs", "Init (ms)",
              "First (ms)", "p50 (ms)", "p90 (ms)", "p99 (ms)", "Runs", "Delegated nodes",
              "Model RSS (MB)", "Peak RSS (MB)"]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for r in records:
        lat = _get(r, "latency", "model") or {}
        inputs = " ".join("%s %s" % ("x".join(str(v) for v in t["shape"]), t["dtype"])
                          for t in lat.get("inputs") or []) or "-"
        added = None if r.get("rss_before_load_mb") is None else \
            r["peak_rss_mb"] - r["rss_before_load_mb"]
        cells = [r["target"], r["artifact"],
                 _fmt(_get(r, "size", "model", "raw_bytes") / 1024.0, "%.1f"),
                 _fmt(_get(r, "size", "model", "gzip_bytes") / 1024.0, "%.1f"), inputs,
                 _fmt(lat.get("init_ms"), "%.1f"), _fmt(lat.get("first_inference_ms"), "%.3f"),
                 _fmt(lat.get("p50_ms"), "%.3f"), _fmt(lat.get("p90_ms"), "%.3f"),
                 _fmt(lat.get("p99_ms"), "%.3f"), _fmt(lat.get("count"), "%d"),
                 _delegated(_get(r, "placement", "model") or {}), _fmt(added, "%.1f"),
                 _fmt(r.get("peak_rss_mb"), "%.1f")]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    lines += ["", "Plain .tflite files (no manifest): latency like benchmark_model (init, first "
              "inference, warm-up, then timed runs on random inputs), op placement and memory "
              "(Model RSS: peak RSS minus the peak before the model was loaded); accuracy is "
              "not measured, there is no manifest saying what the outputs mean."]
    return "\n".join(lines)


def _delegated(where):
    return "-" if where.get("nodes") is None else "%d/%d %s" % (
        where["delegated"], where["nodes"], where.get("delegate", ""))


def _model_dir_table(data, records):
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
        delegated = _delegated(_get(r, "placement", role) or {})
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
             "target, scored where edgekit runs (`edge.metrics.score`)." % (
                 ", ".join(sorted({str(_get(r, "streaming", "stride")) for r in records})),
                 "x".join(str(v) for v in data["settings"]["camera"]))]
    return "\n".join(lines + notes)


def _target_notes(data):
    notes = []
    for name, target in sorted(data.get("targets", {}).items()):
        machine = target.get("machine") or {}
        runtime = machine.get("runtime") or {}
        notes.append("Target %s: %s, %s, %s CPUs, Python %s, %s %s, threads %s, backend %s." % (
            name, machine.get("cpu", "?"), machine.get("machine", "?"),
            machine.get("cpu_count", "?"), machine.get("python", "?"),
            runtime.get("package", "?"), runtime.get("version", "?"),
            target["config"].get("threads") or "auto", target["config"].get("backend")))
    return "\n".join(notes)


def write_all(out, data, progress=None, plot_task=None):
    """results.json, results.csv, results.md, pareto.png (+ pareto.json, the plotted numbers)
    and, with ``--profile``, profile.png into ``out``; returns the paths.

    The plot is skipped, with one progress line saying why, when matplotlib is missing or no
    record has both accuracy and latency per decision.
    """
    from edge.bench.plot import pareto_plot, why_no_plot
    from edge.bench.profile import profile_markdown, profile_plot
    from edge.atomic import write_json, write_text

    os.makedirs(out, exist_ok=True)
    paths = {"json": os.path.join(out, "results.json"), "csv": os.path.join(out, "results.csv"),
             "md": os.path.join(out, "results.md"), "png": os.path.join(out, "pareto.png")}
    write_json(paths["json"], data)
    write_csv(paths["csv"], data)
    profile = profile_markdown(data)
    write_text(paths["md"], markdown_table(data) + ("\n" + profile + "\n" if profile else ""))
    if profile and profile_plot(data, os.path.join(out, "profile.png")):
        paths["profile_png"] = os.path.join(out, "profile.png")
    reason = why_no_plot(data)
    if reason is None and pareto_plot(data, paths["png"], plot_task):
        return paths
    paths.pop("png")
    if progress:
        progress("no Pareto plot: %s" % (reason or "nothing to plot"))
    return paths
