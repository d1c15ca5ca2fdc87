"""``edgekit quickstart``: the whole pipeline, offline, on this machine, in one command.

Synthesises a swimmer data set (real video files), trains the MTDNN on it, evaluates the held-out
clips, makes the artifacts a user compares (``models/fp32``, ``models/ptq``, ``models/qat``,
``models/prune-qat``), benchmarks all of them on this CPU (the ``cpu`` target of devices.toml, with
``--profile``), so the bench table and trade-off plot show the methods side by side, and streams an
unseen video through the QAT artifact, then prints one summary table with each step's cost.
Nothing is downloaded; everything lands under ``--out``.

Budget (10 minutes on 2 cores; measured step by step in the README): the four methods are
quantized two at a time in their own processes (one TensorFlow process kept 1.1 of the 2 cores
busy: 786 s sequential, 663 s two at a time), training runs 32 epochs (36 reached the same
held-out accuracy on the quickstart data, with validation at its best from epoch 31), prune-qat
prunes and fine-tunes 1 epoch each, not ``edgekit quantize``'s default 4 (2 took the run to
606 s), no artifact gets ``clip.tflite`` (54 s
of the QAT step; the device runs frame + head) or the per-layer error report (40 s of it).
"""

import json
import os
import time

import click
import numpy as np

from edge.errors import EdgekitError

# Chosen so the whole quickstart finishes well inside 15 minutes on 2 CPU cores.
DEFAULTS = dict(backbone="mbconv_micro", head_size="seed", size=(100, 100), clip_length=15, clips_per_pair=20,
                epochs=32, batch_size=8, learning_rate=1e-3, patience=10, quantize_method="qat",
                quantize_epochs=2, methods=("fp32", "ptq", "qat", "prune-qat"),
                prune_epochs=1)


def _banner(text):
    click.echo("\n== %s" % text)


def make_demo_video(out_path, seed=1, clips_per_action=1, frames=15, size=(100, 100)):
    """Synthesise fresh clips (a seed the training set never used) and join them into one video.

    Returns the per-frame ground truth so windows from the stream can be scored.
    """
    from edge.video import read_clip, write_video
    from edge.data.clips import scan_clip_folder
    from quantize.data.synth import synthesize_swimmers

    clips_dir = os.path.join(os.path.dirname(out_path), "demo_clips")
    synthesize_swimmers(clips_dir, clips_per_pair=clips_per_action, frames=frames, size=size, seed=seed,
                        overwrite=True)
    index = scan_clip_folder(clips_dir)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(index.items))[:8]
    frames_out, truth = [], []
    for i in order:
        item = index.items[i]
        frames_out.append(read_clip(item.path, frames))
        truth.extend([(index.labels.actions[item.action], index.labels.identities[item.identity])] * frames)
    write_video(out_path, np.concatenate(frames_out), fps=15)
    return index.labels, truth


def stream_video(model_dir, video, truth, stride, clip_frames):
    """Run the device runtime over ``video``; score windows that lie inside one joined clip."""
    from edge.runner import StreamingRunner
    from edge.sources import FrameSource

    runner = StreamingRunner(model_dir, stride=stride)
    source = FrameSource(video)
    windows = correct_action = correct_identity = scored = 0
    head_ms, frame_ms = [], []
    try:
        for index, timestamp, frame in source:
            for result in runner.process(frame, index, timestamp):
                windows += 1
                timings = result.timings
                frame_ms.append(timings["frame_model"])
                head_ms.append(timings["head"])
                first, last = result.first_frame, result.last_frame
                if first // clip_frames == last // clip_frames:
                    scored += 1
                    correct_action += result.tasks["action"].label == truth[first][0]
                    correct_identity += result.tasks["identity"].label == truth[first][1]
    finally:
        source.close()
    return {"frames": source.stats.frames_read, "windows": windows, "scored_windows": scored,
            "action_accuracy": correct_action / scored if scored else float("nan"),
            "identity_accuracy": correct_identity / scored if scored else float("nan"),
            "frame_ms_median": float(np.median(frame_ms)) if frame_ms else float("nan"),
            "head_ms_median": float(np.median(head_ms)) if head_ms else float("nan")}


def benchmark(models_dir, bench_dir, verbose, primary):
    """``edgekit bench --device cpu --profile`` on every artifact of ``models_dir``; the
    figures of ``primary`` for the summary, and one row per method (``methods``)."""
    from edge.bench.harness import Progress, run_bench
    from edge.bench.report import write_all

    progress = Progress() if verbose else Progress(open(os.devnull, "w"))
    document = run_bench(["cpu"], [models_dir], progress=progress, profile=True,
                         command=["edgekit", "quickstart"])
    write_all(bench_dir, document, progress)
    rows = [_bench_row(r) for r in document["records"]]
    record = [r for r in document["records"] if r["artifact"] == primary][0]
    return dict(_bench_row(record), methods=rows)


def _bench_row(record):
    accuracy = record.get("accuracy") or {}
    return {"artifact": record["artifact"], "deployed_kb": record["deployed"]["raw_bytes"] / 1024.0,
            "frame_p50_ms": record["latency"]["frame"]["p50_ms"],
            "head_p50_ms": record["latency"]["head"]["p50_ms"],
            "cost_per_decision_ms": record["streaming"]["cost_per_decision_ms"],
            "action_accuracy": accuracy.get("action", {}).get("accuracy", float("nan")),
            "identity_accuracy": accuracy.get("identity", {}).get("accuracy", float("nan")),
            "peak_rss_mb": record.get("peak_rss_mb") or float("nan")}


LANES = 2  # methods quantized at once: TensorFlow keeps ~1.1 of the 2 cores busy on its own


def _quantize_one(run_dir, out, method, epochs, seed, clip_model, log_path):
    # clip_model: the quickstart makes no clip.tflite (54 s of the QAT step, measured); the
    # device runs frame + head, and `edgekit quantize` still writes it by default
    """One ``quantize_run`` in a worker process, its output in ``log_path``; the figures the
    summary needs (the report itself is in ``out``)."""
    from quantize.quantization.pipeline import quantize_run

    t0 = time.time()
    with open(log_path, "w") as log:
        os.dup2(log.fileno(), 1)  # this process only: TensorFlow's C++ logs too
        os.dup2(log.fileno(), 2)
        report = quantize_run(run_dir, out, method, epochs=epochs, verbose=1, seed=seed,
                              clip_model=clip_model, layer_errors=False)
    return {"metrics": report["metrics"]["tflite"], "seconds": time.time() - t0,
            "bytes": report["artifacts"]["frame"]["raw_bytes"]
            + report["artifacts"]["head"]["raw_bytes"]}


def _quantize_all(run_dir, models_dir, settings, verbose, seed, steps):
    """Step 3: one artifact per method under ``models_dir/METHOD``, :data:`LANES` at a time in
    fresh processes (the longest first), one timed step each (seconds of its own process); the
    TFLite metrics of the primary method (``quantize_method``, the one streamed).

    Why processes: one TensorFlow process fine-tuning the quickstart's small network keeps only
    ~1.1 cores busy (measured: 110 % CPU over the whole sequential run, 786 s), so two methods at
    once use the second core; spawned, not forked, because this process already runs
    TensorFlow.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    primary = settings["quantize_method"]
    methods = list(settings["methods"])
    if primary not in methods:
        methods.append(primary)
    epochs = {primary: settings["quantize_epochs"], "prune-qat": settings["prune_epochs"]}
    cost = {"prune-qat": 0, "qat": 1}  # fine-tuning methods first: they take longest
    order = sorted(methods, key=lambda m: cost.get(m, 2))
    os.makedirs(models_dir, exist_ok=True)
    _banner("3/5 quantizing %s, %d at a time (logs: %s/METHOD.log)"
            % (", ".join("%s%s" % (m, " (%d epochs)" % epochs[m] if epochs.get(m) else "")
                         for m in order), LANES, models_dir))
    done = {}
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=LANES, mp_context=context) as pool:
        futures = {method: pool.submit(_quantize_one, run_dir, os.path.join(models_dir, method),
                                       method, epochs.get(method), seed, False,
                                       os.path.join(models_dir, method + ".log"))
                   for method in order}
        for method in order:
            done[method] = futures[method].result()
            if verbose:
                print("  %s done in %.0f s" % (method, done[method]["seconds"]), flush=True)
    for method in methods:
        result = done[method]
        metrics = result["metrics"]
        steps.append(("quantize %s" % method, result["seconds"],
                      "%sframe+head: action %.1f %%, identity %.1f %%; %.0f KiB%s"
                      % ("" if method == "fp32" else "int8 ", 100 * metrics["action"]["accuracy"],
                         100 * metrics["identity"]["accuracy"], result["bytes"] / 1024.0,
                         " (%d epochs; edgekit quantize's default is 4)" % epochs[method]
                         if method == "prune-qat" else "")))
    return done[primary]["metrics"]


def quickstart(out, seed=0, epochs=None, verbose=1, **overrides):
    """Run every step into ``out``; ``overrides`` replace :data:`DEFAULTS` (tests shrink them)."""
    from quantize.data.synth import synthesize_swimmers
    from quantize.train import train

    unknown = set(overrides) - set(DEFAULTS)
    if unknown:
        raise TypeError("unknown quickstart settings: %s" % ", ".join(sorted(unknown)))
    settings = dict(DEFAULTS, **overrides)
    if epochs:
        settings["epochs"] = int(epochs)
    os.makedirs(out, exist_ok=True)
    data_dir, run_dir = os.path.join(out, "data"), os.path.join(out, "run")
    models_dir, demo = os.path.join(out, "models"), os.path.join(out, "demo", "pool.avi")
    if os.path.exists(os.path.join(run_dir, "run.json")):
        raise EdgekitError("%s already holds a quickstart; remove it or pass another --out" % out)
    steps, started = [], time.time()

    _banner("1/5 synthesising swimmer clips")
    t0 = time.time()
    summary = synthesize_swimmers(data_dir, clips_per_pair=settings["clips_per_pair"],
                                  frames=settings["clip_length"], size=settings["size"], seed=seed,
                                  overwrite=True)
    steps.append(("synthesise", time.time() - t0, "%d clips of %d frames at %dx%d"
                  % (summary["clips"], settings["clip_length"], settings["size"][0], settings["size"][1])))

    _banner("2/5 training (backbone %s, up to %d epochs)" % (settings["backbone"], settings["epochs"]))
    t0 = time.time()
    metrics = train(data_dir, run_dir, task="swim", backbone=settings["backbone"], size=settings["size"],
                    clip_length=settings["clip_length"], head_size=settings["head_size"], epochs=settings["epochs"],
                    batch_size=settings["batch_size"], learning_rate=settings["learning_rate"],
                    patience=settings["patience"], seed=seed, verbose=verbose)
    tasks = metrics["tasks"]
    steps.append(("train + eval", time.time() - t0,
                  "%d epochs; held-out action %.1f %%, identity %.1f %% (rank-1 %.1f %%)"
                  % (metrics["training"]["epochs_run"], 100 * tasks["action"]["accuracy"],
                     100 * tasks["identity"]["accuracy"], 100 * tasks["identity"]["rank1"])))

    t0 = time.time()
    tflite = _quantize_all(run_dir, models_dir, settings, verbose, seed, steps)
    steps.append(("quantize, wall", time.time() - t0, "%d methods, %d at a time"
                  % (len(settings["methods"]), LANES)))
    primary = settings["quantize_method"]

    _banner("4/5 benchmarking %s on this CPU (edgekit bench --device cpu --profile)"
            % ", ".join(settings["methods"]))
    t0 = time.time()
    bench = benchmark(models_dir, os.path.join(out, "bench"), verbose, primary)
    steps.append(("bench", time.time() - t0,
                  "%s: frame %.2f ms, head %.2f ms (p50); %.2f ms per decision; on-device action "
                  "%.1f %%, identity %.1f %%; peak RSS %.0f MB"
                  % (primary, bench["frame_p50_ms"], bench["head_p50_ms"],
                     bench["cost_per_decision_ms"], 100 * bench["action_accuracy"],
                     100 * bench["identity_accuracy"], bench["peak_rss_mb"])))

    _banner("5/5 streaming an unseen video through the device runtime")
    t0 = time.time()
    _, truth = make_demo_video(demo, seed=seed + 1000, frames=settings["clip_length"],
                               size=settings["size"])
    stream = stream_video(os.path.join(models_dir, primary), demo, truth, stride=5,
                          clip_frames=settings["clip_length"])
    steps.append(("stream", time.time() - t0,
                  "%d frames, %d windows; action %.1f %%, identity %.1f %% on %d single-clip windows; "
                  "frame model %.1f ms, head %.1f ms (median)"
                  % (stream["frames"], stream["windows"], 100 * stream["action_accuracy"],
                     100 * stream["identity_accuracy"], stream["scored_windows"],
                     stream["frame_ms_median"], stream["head_ms_median"])))

    total = time.time() - started
    result = {"steps": [{"step": s, "seconds": round(t, 1), "result": r} for s, t, r in steps],
              "total_seconds": round(total, 1), "test_metrics": tasks, "tflite_metrics": tflite,
              "bench": bench, "stream": stream, "settings": {k: list(v) if isinstance(v, tuple) else v for k, v in settings.items()}}
    from edge.atomic import write_json

    write_json(os.path.join(out, "quickstart.json"), result)
    return result


def format_summary(result):
    lines = ["", "%-18s %8s  %s" % ("step", "seconds", "result")]
    for step in result["steps"]:
        lines.append("%-18s %8.1f  %s" % (step["step"], step["seconds"], step["result"]))
    lines.append("%-18s %8.1f" % ("total", result["total_seconds"]))
    methods = result.get("bench", {}).get("methods") or []
    if methods:
        lines += ["", "the trade-off on this CPU (bench/results.md, bench/pareto.png, "
                  "bench/profile.png):",
                  "%-10s %9s %9s %9s %13s %8s %8s" % ("artifact", "size KiB", "frame ms",
                                                     "head ms", "ms/decision", "action",
                                                     "identity")]
        for m in methods:
            lines.append("%-10s %9.0f %9.3f %9.3f %13.3f %7.1f%% %7.1f%%" % (
                m["artifact"], m["deployed_kb"], m["frame_p50_ms"], m["head_p50_ms"],
                m["cost_per_decision_ms"], 100 * m["action_accuracy"],
                100 * m["identity_accuracy"]))
    return "\n".join(lines)


@click.command("quickstart")
@click.option("--out", default="quickstart", show_default=True, type=click.Path(file_okay=False),
              help="Folder for the data, run, models and demo video.")
@click.option("--epochs", default=None, type=int, help="Training epochs [%d]." % DEFAULTS["epochs"])
@click.option("--seed", default=0, show_default=True)
def quickstart_command(out, epochs, seed):
    """Synthesise data, train, evaluate, quantize and stream a video: the whole pipeline offline."""
    result = quickstart(out, seed=seed, epochs=epochs,
                        verbose=1 if click.get_text_stream("stdout").isatty() else 2)
    click.echo(format_summary(result))
    click.echo("\nwritten: %s (data/, run/, models/{%s}/, bench/, demo/, quickstart.json)"
               % (out, ",".join(DEFAULTS["methods"])))
