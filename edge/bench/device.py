"""Measure one artifact (model directory or .tflite file): ``python -m edge.bench.device JOB OUT``.

The host writes JOB (JSON, keys below), runs this module on the target (locally or over ssh) in a
fresh process per artifact, so the peak RSS is the artifact's own, and reads OUT (JSON) back.
Progress goes to stderr, one line per stage. A user-level failure (a delegate that does not load,
a model this runtime cannot run) is written to OUT as ``{"error": "..."}`` and exits 2; the host
turns it into one line with the device's name.

JOB keys: ``artifact`` (name), ``model_dir``, ``backend`` (an edge.backends key) and
``backend_options`` (the target's; its variant picks the frame model; older jobs' ``device`` and
``delegate`` strings are still read), ``threads``, ``roles`` (models to time: frame, head, clip),
``runs``, ``min_seconds``, ``max_seconds``, ``warmup_runs``, ``warmup_seconds``, ``stride``, ``fps``,
``pace_seconds``, ``camera`` ([height, width]), ``eval`` (npz with ``x`` uint8 (N, T, H, W, 3) RGB,
or null), ``power`` (none | tegrastats), ``power_interval_ms``, ``seed``. A job with
``model_file`` (a plain .tflite, no manifest) instead of ``model_dir`` is timed alone
(:func:`run_file_job`): no roles, streaming, paced run or eval.

OUT: ``{"artifact", "machine": sysinfo.machine_info(), "latency": {role: {...}}, "placement":
{role: {...}}, "streaming": {...}, "paced": {...}, "eval_outputs": {output: [[...], ...]} | null,
"power": {...} | null, "peak_rss_mb", "seconds"}``; the fields are documented in
``edge/bench/report.py`` (the harness side that assembles results.json).
"""

import json
import os
import sys
import time
import traceback

import numpy as np

from edge.bench.evalset import clip_outputs
from edge.bench.power import make_sampler, power_figures
from edge.bench.stats import enough, summarize
from edge.bench.sysinfo import machine_info, peak_rss_mb
from edge.errors import EdgekitError

PIXEL_ROLES = ("frame", "frame_edgetpu", "clip")


def progress(message):
    sys.stderr.write("edgekit-bench: %s\n" % message)
    sys.stderr.flush()


def _fill_inputs(interpreter, role, rng):
    """Random inputs of the right dtype (pixels 0..255 for frame/clip), like benchmark_model."""
    for detail in interpreter.get_input_details():
        shape, dtype = tuple(detail["shape"]), np.dtype(detail["dtype"])
        if np.issubdtype(dtype, np.integer):
            info = np.iinfo(dtype)
            value = rng.integers(info.min, int(info.max) + 1, shape, dtype=dtype)
        elif role in PIXEL_ROLES:
            value = rng.uniform(0.0, 255.0, shape).astype(dtype)
        else:
            value = rng.uniform(-1.0, 1.0, shape).astype(dtype)
        interpreter.set_tensor(detail["index"], value)


def _invoke(interpreter, path):
    try:
        interpreter.invoke()
    except (RuntimeError, ValueError) as exc:
        raise EdgekitError("this target cannot run %s: %s" % (os.path.basename(path),
                                                               str(exc).strip().splitlines()[0]))


def time_model(path, role, device="cpu", delegate=None, threads=None, runs=50, min_seconds=1.0,
               max_seconds=150.0, warmup_runs=1, warmup_seconds=0.5, seed=0, sampler=None,
               backend=None):
    """benchmark_model's procedure for one .tflite: init, first inference, warm-up, timed runs.

    ``backend`` (an :class:`edge.backends.Backend`) loads the model and reports its placement;
    without one, ``device``/``delegate`` name it as for ``make_interpreter``.
    Returns (latency dict, placement dict, power samples in mW or None).
    """
    from edge import backends

    if backend is None:
        backend = backends.create(device, delegate=delegate)
    t0 = time.perf_counter()
    interpreter = backend.load(path, threads=threads)
    init_ms = (time.perf_counter() - t0) * 1e3
    where = backend.placement(interpreter)
    _fill_inputs(interpreter, role, np.random.default_rng(seed))
    t0 = time.perf_counter()
    _invoke(interpreter, path)
    first_ms = (time.perf_counter() - t0) * 1e3

    warm = []
    start = time.perf_counter()
    while not enough(len(warm), time.perf_counter() - start, warmup_runs, warmup_seconds,
                     max_seconds):
        t0 = time.perf_counter()
        interpreter.invoke()
        warm.append((time.perf_counter() - t0) * 1e3)

    samples = None
    if sampler is not None:
        sampler.start()
    times = []
    invoke = interpreter.invoke
    clock = time.perf_counter
    start = clock()
    while not enough(len(times), clock() - start, runs, min_seconds, max_seconds):
        t0 = clock()
        invoke()
        times.append((clock() - t0) * 1e3)
    wall = clock() - start
    if sampler is not None:
        samples = sampler.stop()
    latency = {"model": os.path.basename(path), "device": backend.describe(),
               "threads": threads, "init_ms": init_ms, "first_inference_ms": first_ms,
               "warmup": dict(summarize(warm), seconds=sum(warm) / 1e3),
               "seconds": wall}
    latency.update(summarize(times))
    latency["inputs"], latency["outputs"] = (
        _io(interpreter.get_input_details()), _io(interpreter.get_output_details()))
    del interpreter
    return latency, where, samples


def _io(details):
    """[{name, shape, dtype}] of model inputs or outputs: what a plain .tflite takes and gives."""
    return [{"name": str(d["name"]), "shape": [int(v) for v in d["shape"]],
             "dtype": np.dtype(d["dtype"]).name} for d in details]


def camera_frames(height, width, count=8, seed=0):
    """``count`` distinct noise frames (BGR, as a camera gives them), cycled by the caller."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    return [np.ascontiguousarray(np.roll(base, 7 * i, axis=1)) for i in range(count)]


def streaming_figures(runner, frames, stride):
    """Per-frame and per-decision cost of the runner at ``stride``, frames preloaded."""
    runner.reset()
    T = runner.clip_length
    index = 0
    while True:  # warm the ring up to its first decision (untimed): then every frame is steady
        results = runner.process(frames[index % len(frames)], index)
        index += 1
        if results or index > T + stride:
            break
    decisions_wanted = max(10, 30 // stride)
    plain, decision, frame_model, step, head, pre = [], [], [], [], [], []
    count = 0
    first = index
    start = time.perf_counter()
    for _ in range(decisions_wanted * stride):
        t0 = time.perf_counter()
        results = runner.process(frames[index % len(frames)], index)
        elapsed = (time.perf_counter() - t0) * 1e3
        index += 1
        if results:
            count += len(results)
            decision.append(elapsed)
            for result in results:
                frame_model.append(result.timings["frame_model"])
                step.append(result.timings["step"])
                head.append(result.timings["head"])
                pre.append(result.timings["preprocess"])
        else:
            plain.append(elapsed)
    total_ms = (time.perf_counter() - start) * 1e3
    frames_timed = index - first
    if count == 0:
        raise EdgekitError("the runner gave no decision in %d frames at stride %d"
                           % (frames_timed, stride))
    med = lambda v: float(np.median(v)) if v else None  # noqa: E731
    return {"stride": stride, "clip_length": T, "frames": frames_timed, "decisions": count,
            "camera": list(frames[0].shape[:2]),
            "frame_ms": med(plain), "decision_frame_ms": med(decision),
            "preprocess_ms": med(pre), "frame_model_ms": med(frame_model),
            "step_ms": med(step) if runner.session.step is not None else None,
            "head_ms": med(head),
            "cost_per_decision_ms": total_ms / count, "per_frame_ms": total_ms / frames_timed,
            "max_fps": 1e3 * frames_timed / total_ms}


def paced_run(runner, frames, fps, seconds):
    """A camera delivering ``fps`` frames/s for ``seconds``: the runner takes the newest frame
    whenever it is free; frames that arrive while it is busy are dropped (a capture buffer of
    one). The runner sees consecutive indices and the camera timestamps, as ``edgekit run``
    would from a live source."""
    runner.reset()
    period = 1.0 / fps
    offered = max(1, int(round(seconds * fps)))
    processed = dropped = decisions = 0
    last = -1
    first_decision = None
    latencies = []
    start = time.perf_counter()
    while True:
        now = time.perf_counter() - start
        newest = min(int(now / period), offered - 1)
        if newest <= last:
            if last >= offered - 1:
                break
            time.sleep(max(0.0, (last + 1) * period - now))
            continue
        dropped += newest - last - 1
        arrival = newest * period
        results = runner.process(frames[newest % len(frames)], processed, arrival)
        done = time.perf_counter() - start
        processed += 1
        last = newest
        if results:
            decisions += len(results)
            latencies.append((done - arrival) * 1e3)
            if first_decision is None:
                first_decision = done
    T = runner.clip_length
    return {"fps": fps, "seconds": seconds, "frames_offered": offered,
            "frames_processed": processed, "frames_dropped": dropped,
            "drop_rate": dropped / float(offered), "decisions": decisions,
            "time_to_first_decision_ms": None if first_decision is None else first_decision * 1e3,
            "ideal_time_to_first_decision_ms": (T - 1) * period * 1e3,
            "decision_latency_p50_ms": float(np.median(latencies)) if latencies else None,
            "stride": runner.stride}


def job_backend(job):
    """The job's backend: ``backend`` + ``backend_options`` (the earlier job format's
    ``device``/``delegate`` strings are still read)."""
    from edge import backends

    if job.get("backend"):
        return backends.create(job["backend"], **(job.get("backend_options") or {}))
    return backends.create(job.get("device") or "cpu", delegate=job.get("delegate"))


def run_job(job):
    from edge import backends
    from edge.backends.litert import head_kernels
    from edge.manifest import Manifest
    from edge.runner import StreamingRunner

    started = time.perf_counter()
    name = job["artifact"]
    model_dir = job["model_dir"]
    manifest = Manifest.load(model_dir)
    backend, threads = job_backend(job), job.get("threads")
    variant = backend.variant
    manifest.verify(model_dir, roles=["frame"], variant=variant)
    manifest.verify(model_dir, roles=[r for r in job["roles"] if r != "frame"])
    result = {"artifact": name, "machine": machine_info(), "latency": {}, "placement": {},
              "power": None}
    profiled = []

    # the head on the CPU kernels the runner's session gives it (edge.backends.litert.head_kernels)
    head_backend = backends.create("cpu", kernels=head_kernels())
    for role in job["roles"]:
        path = manifest.model_path(model_dir, role, variant if role == "frame" else "tflite")
        # the frame model (and the whole clip model, on the plain variant) on the target's
        # backend; the head always on the CPU, as the runner runs it
        on_frame_target = role == "frame" or (role == "clip" and variant == "tflite")
        sampler = make_sampler(job.get("power"), job.get("power_interval_ms", 100)) \
            if role == "frame" else None
        progress("%s: latency %s (>= %d runs and >= %.1f s)" % (
            name, os.path.basename(path), job["runs"], job["min_seconds"]))
        latency, where, samples = time_model(
            path, role, threads=threads, runs=job["runs"],
            min_seconds=job["min_seconds"], max_seconds=job.get("max_seconds", 150.0),
            warmup_runs=job.get("warmup_runs", 1), warmup_seconds=job.get("warmup_seconds", 0.5),
            seed=job.get("seed", 0), sampler=sampler,
            backend=backend if on_frame_target else head_backend)
        result["latency"][role] = latency
        result["placement"][role] = where
        profiled.append((role, path, latency, where))
        if samples is not None:
            result["power"] = power_figures(samples, latency["mean_ms"], job.get("power"))
            if result["power"] is None:
                progress("%s: the power sampler gave no samples; no power figures" % name)

    runner = StreamingRunner(model_dir, device=backend, threads=threads,
                             stride=job.get("stride"), source_order="BGR")
    height, width = job.get("camera", [480, 640])
    frames = camera_frames(int(height), int(width), seed=job.get("seed", 0))
    progress("%s: streaming at stride %d (%dx%d camera frames)" % (name, runner.stride, width,
                                                                    height))
    result["streaming"] = streaming_figures(runner, frames, runner.stride)
    progress("%s: camera-paced run, %g fps for %g s" % (name, job["fps"], job["pace_seconds"]))
    result["paced"] = paced_run(runner, frames, float(job["fps"]), float(job["pace_seconds"]))

    result["eval_outputs"] = None
    if job.get("eval"):
        with np.load(job["eval"]) as data:
            clips = data["x"]
        progress("%s: accuracy on %d eval clips" % (name, len(clips)))
        result["eval_outputs"] = clip_outputs(runner, clips)
    del runner
    result["peak_rss_mb"] = peak_rss_mb()
    _add_profile(result, job, [p for p in profiled if p[0] in ("frame", "step", "head")],
                 threads)
    # the device side must never pull in TensorFlow (it would not exist on a camera)
    result["machine"]["tensorflow_modules"] = _tensorflow_modules()
    result["seconds"] = time.perf_counter() - started
    return result


def run_file_job(job):
    """One plain .tflite (``job["model_file"]``, no manifest): latency, placement, memory.

    No streaming figures and no accuracy (there is no manifest to say what the model's inputs
    and outputs mean). ``rss_before_load_mb`` is the peak RSS before the model is loaded (Python,
    numpy, OpenCV and the runtime), so ``peak_rss_mb`` minus it is what the model added.
    """
    started = time.perf_counter()
    path = job["model_file"]
    if not os.path.isfile(path):
        raise EdgekitError("%s does not exist on the target" % path)
    from edge.interpreter import interpreter_module

    interpreter_module()  # the runtime library is loaded before the baseline, not counted in it
    before = peak_rss_mb()
    sampler = make_sampler(job.get("power"), job.get("power_interval_ms", 100))
    progress("%s: latency (>= %d runs and >= %.1f s)" % (job["artifact"], job["runs"],
                                                          job["min_seconds"]))
    latency, where, samples = time_model(
        path, "model", backend=job_backend(job), threads=job.get("threads"), runs=job["runs"], min_seconds=job["min_seconds"],
        max_seconds=job.get("max_seconds", 150.0), warmup_runs=job.get("warmup_runs", 1),
        warmup_seconds=job.get("warmup_seconds", 0.5), seed=job.get("seed", 0),
        sampler=sampler)
    result = {"artifact": job["artifact"], "machine": machine_info(),
              "latency": {"model": latency}, "placement": {"model": where}, "power": None,
              "rss_before_load_mb": before, "peak_rss_mb": peak_rss_mb()}
    _add_profile(result, job, [("model", path, latency, where)], job.get("threads"))
    if samples is not None:
        result["power"] = power_figures(samples, latency["mean_ms"], job.get("power"))
    result["machine"]["tensorflow_modules"] = _tensorflow_modules()
    result["seconds"] = time.perf_counter() - started
    return result


def _add_profile(result, job, models, threads):
    """``result["profile"]`` = {role: :func:`edge.bench.profile.model_profile`} when the job
    asks (``--profile``). Run after the peak RSS is read: the graph is read by a second
    interpreter, which must not count in the artifact's memory."""
    if not job.get("profile"):
        return
    from edge.bench.profile import model_profile

    progress("%s: profile of %s" % (job["artifact"], ", ".join(m[0] for m in models)))
    result["profile"] = {role: model_profile(path, latency.get("p50_ms"), where, threads)
                         for role, path, latency, where in models}


def _tensorflow_modules():
    """Loaded TensorFlow/Keras modules: the device side must never pull them in."""
    return sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "tf_keras", "keras"))


def write_json_atomic(path, data):
    from edge.atomic import write_text

    write_text(path, json.dumps(data))


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) != 2:
        sys.stderr.write("usage: python -m edge.bench.device JOB.json OUT.json\n")
        return 64
    job_path, out_path = argv
    try:
        with open(job_path) as handle:
            job = json.load(handle)
        result = run_file_job(job) if job.get("model_file") else run_job(job)
    except EdgekitError as exc:
        progress("error: %s" % exc)
        write_json_atomic(out_path, {"error": str(exc)})
        return 2
    except Exception as exc:  # noqa: BLE001 - report anything else with its traceback
        traceback.print_exc()
        write_json_atomic(out_path, {"error": "%s: %s (traceback above)" % (
            type(exc).__name__, str(exc).strip().splitlines()[0] if str(exc).strip() else "")})
        return 3
    write_json_atomic(out_path, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
