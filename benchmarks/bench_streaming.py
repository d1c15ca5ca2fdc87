"""Streaming vs re-running the clip model, the runner's overhead, and peak RSS, in one run.

Prints, for one model directory (medians of per-call samples, interleaved call by call):

- (a) cost per decision: streaming at stride 1 (frame model once per frame + head per window,
  through the runner, preprocessing included) against the frame invoke F (issue 13: <= 1.25 x F)
  and against invoking the full clip model once per decision, the head H after the frame model
  (issue 13: <= 0.45 ms for B3), and the bound (F + H) / (T * F' + H);
- (b) the runner's per-frame overhead over the raw ``invoke()`` time of the same interpreters
  (one frame invoke + one head invoke per frame; frames are decoded beforehand, so video
  decoding is excluded; preprocessing is measured and subtracted apart; issue 13: <= 5 %);
- (c) peak RSS of a camera process: a fresh interpreter that imports only ``edge``, loads the
  runner (frame + head models) and streams VGA frames (issue 4: < 150 MB with EfficientNet-B3);
- (d) the head's weight bytes read per window: XNNPACK packs every node's weights for that node,
  so the recurrent kernel W_h, shared by the 14 unrolled steps in the .tflite, is packed and
  read 14 times; and where the head's nodes run: how many on XNNPACK, in how many partitions,
  which ops on the built-in kernels (issue 13: every op delegated, one partition);
- (e) with ``--stages N``: the runner's hot path stage by stage (:func:`stage_breakdown`), to
  see which part of (b)'s overhead is which, and what one small call costs right after the
  frame invoke against the same call warm (:func:`cold_after_invoke`).

Without ``--model`` the real network is built first, in a TensorFlow subprocess, so no measuring
process ever loads TensorFlow: ``quantize.model.build_mtdnn(quantize.config.swim_config(...))``
(EfficientNet-B3 at 100x100, T=15; random weights with batch-norm statistics estimated on the
calibration frames, so activations and int8 ranges are at a trained network's scale), split for
streaming as ``edgekit quantize`` splits it (``quantize.streaming``) and converted to int8 by the
quantize path's converter (``quantize.quantization.convert.convert``, ptq, the pipeline's I/O
types: uint8 pixels -> int8 frame outputs -> float32 task outputs), with the manifest
from ``quantize.quantization.artifacts.build_manifest``. That takes ~5-10 minutes on two cores;
``--keep DIR`` saves the directory for later ``--model DIR`` runs.

    python benchmarks/bench_streaming.py --keep /tmp/b3        # build EfficientNet-B3, measure
    python benchmarks/bench_streaming.py --model /tmp/b3 --repeats 9
    python benchmarks/bench_streaming.py --backbone test_tiny --size 32   # quick smoke run

Measured on the step model (schema 4): the README, "Where the rest goes" (Intel Xeon, 2 MiB L2;
1.26-1.29 x F, overhead 7.0-9.1 % over four runs, and the stage split). With the head in float
on int8 weights (quantize.quantization.hybrid), README "The head with int8 weights and float
activations" (AMD EPYC VM, AVX2 only, F 8.5-9.0 ms: H 0.68-0.78 -> 0.50-0.54 ms, the head graph
4 partitions -> 1). With the hot path's tensors held and its conversions bound, README "The
runner's overhead on a faster CPU" (AMD EPYC VM with AVX-512, F 1.5-1.6 ms, six interleaved
pairs: 1.26 -> 1.23 x F per decision, overhead 7.9 % -> 5.8 %, medians). Measured on the first
split (schema 3, the recurrence still unrolled in the head; 2-core shared x86 VM, AMD EPYC, 1 MiB
L2 per core, 32 MiB L3, threads=1, EfficientNet-B3 swim MTDNN, T=15, VGA frames; ``--model DIR
--repeats 5``, CPU-time medians; the README's "The streaming split" table has the before/after):

- frame invoke F 3.39 ms, head invoke H 0.65 ms right after it (0.48 ms invoked again at once),
  clip invoke 42.8 ms, preprocess 0.23 ms per VGA frame;
- (a) 4.59 ms per decision = 1.35 x F (target 1.25 x F: missed), 1/9.3 of the clip model; the
  clip model's own head cut gave 1.50 x F (H 1.32 ms). H is large next to its 13.4 M MACs
  because the frame model's 9.7 MB of weights evict the head's 3.1 MB from the 1 MiB L2 before
  every window: invoked in a loop the same head takes 0.30 ms. A cache-dependent conclusion.
- (b) 7.2 % over the raw invokes with preprocessing apart (target 5 %: missed; 0.29 ms).
- (c) 104.6 MB for the camera process (edge + frame/head models + 200 VGA frames): met.
- (d) 6.26 MB of packed head weights read per window for 2.85 MB of distinct weights: 14
  packed copies of the 256x1024 recurrent kernel (3.7 MB) plus the two 1024x1024 task layers
  (2.1 MB). That, not the op count, is why H doubles after the frame model. LiteRT's XNNPACK
  weight cache (``CpuOptions(xnnpack_weight_cache_path=...)``, CompiledModel API only) would
  share the copies and cut H to 0.36 ms, but in ai-edge-litert 2.3 it also gives wrong
  results: two int8 FULLY_CONNECTED nodes with equal weights and different output scales come
  out up to 73 codes off, and this head up to 0.023 off in its float outputs (bit-exact without
  the cache). So edgekit does not use it.
"""

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

TARGET_PER_F = 1.25       # streaming cost per decision (stride 1, preprocessing in) / F (issue 13)
TARGET_HEAD_MS = 0.45     # the B3 head, invoked right after the frame model (issue 13)
TARGET_OVERHEAD = 0.05    # runner over raw invokes, preprocessing apart (issue 13)
TARGET_RSS_MB = 150.0


# -- building the models (TensorFlow subprocess only) ----------------------------------------------

def build_source(backbone="efficientnet_b3", size=100, clip_length=15, samples=8, seed=0):
    """(config, float MTDNN with random weights, ``samples`` random frames): the network the
    benchmarks convert. Runs in a ``--build`` subprocess (imports TensorFlow); the same
    arguments give the same weights, so another benchmark can rebuild what ``--keep`` saved.
    """
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    from quantize.config import swim_config
    from quantize.model import build_mtdnn, estimate_batchnorm_statistics
    from quantize.tf_compat import keras

    keras.utils.set_random_seed(seed)
    config = swim_config(backbone=backbone, size=(size, size), clip_length=clip_length)
    model = build_mtdnn(config)
    T, H, W = config.clip_length, config.height, config.width
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 256, (samples, H, W, 3)).astype(np.float32)
    # BN statistics from the data, as a trained network has them: with initial statistics the
    # int8 ranges are unlike a trained network's, and so is what XNNPACK accepts (measured: the
    # LSTM's 14 recurrent ADDs fell back to the CPU on a 1e-7 / 4e-3 input scale ratio).
    estimate_batchnorm_statistics(model, np.stack([frames[np.arange(T) % samples]]))
    return config, model, frames


def build_models(directory, backbone="efficientnet_b3", size=100, clip_length=15, samples=8,
                 seed=0):
    """Build the swim MTDNN with random weights and write int8 frame/head/clip + manifest.

    Runs in the ``--build`` subprocess (imports TensorFlow). Calibration: ``samples`` random
    frames for the frame model, the int8 frame model's outputs of them, windowed as the ring
    windows them, for the head.
    """
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    from quantize.backbones import get_backbone
    from quantize import streaming
    from quantize.quantization import artifacts, gate, hybrid, runner
    from quantize.quantization import convert as conv
    from quantize.quantization.batchnorm import rewrite
    from quantize.tf_compat import tf

    config, model, frames = build_source(backbone, size, clip_length, samples, seed)
    T, H, W = config.clip_length, config.height, config.width
    order = [np.roll(np.arange(T) % samples, k) for k in range(2)]
    # The graphs quantize_run converts: the streaming split (quantize.streaming), standalone
    # BNs as 1x1 depthwise convs where the converter calibrates (not the head: int8 weights,
    # float activations, quantize.quantization.hybrid).
    frame = streaming.frame_model(model.frame, model)
    step = streaming.step_model(model)
    head, clip = streaming.head_model(model), rewrite(model.clip)
    window = streaming.window_inputs(config)
    os.makedirs(directory, exist_ok=True)
    files = {}

    def emit(role, keras_model, shape, name, calib, in_type, out_type):
        t0 = time.time()
        artifact = role + ".tflite"
        if role == "head":
            blob, check = hybrid.convert(keras_model, shape, artifact), hybrid.check
        else:
            blob = conv.convert(keras_model, shape, name, "ptq", calib, in_type, out_type,
                                artifact=artifact)
            check = gate.check_int8
        path = artifacts.write_model(directory, artifact, blob)
        check(path, artifact)
        files[role] = artifact
        print("converted %s (%.1f MB) in %.0f s" % (artifact, len(blob) / 1e6, time.time() - t0),
              flush=True)
        return path

    frame_path = emit("frame", frame, (1, H, W, 3), "frame", frames, "uint8", "int8")
    outputs = runner.frame_outputs(frame_path, [frames[o].astype(np.uint8) for o in order])
    step_samples, _ = streaming.recurrent_windows(
        step, [clip[streaming.LSTM_INPUTS] for clip in outputs], T)
    emit("step", step, streaming.input_shapes(step), None, step_samples, "int8", "int8")
    emit("head", head, streaming.input_shapes(head), None, None, None, None)
    emit("clip", clip, (1, T, H, W, 3), "clip", [frames[o] for o in order], "uint8", "float32")
    manifest = artifacts.build_manifest(directory, config, "ptq", None, model.feature_shape,
                                        files, {"tensorflow": tf.__version__},
                                        get_backbone(config.backbone).normalization,
                                        window=window)
    manifest.save(directory)


def build_in_subprocess(directory, backbone, size, clip_length):
    env = dict(os.environ, TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="3",
               CUDA_VISIBLE_DEVICES="")
    cmd = [sys.executable, os.path.abspath(__file__), "--build", directory, "--backbone",
           backbone, "--size", str(size), "--clip-length", str(clip_length)]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        sys.exit("building the models failed:\n" + proc.stderr[-3000:])
    print(proc.stdout.strip())


# -- measuring (no TensorFlow) ---------------------------------------------------------------------

def synthetic_frames(n, height=480, width=640, seed=0, distinct=8):
    """``n`` VGA frames cycling over ``distinct`` arrays (so the frames don't inflate the RSS)."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    pool = [np.roll(base, 3 * i, axis=1) for i in range(distinct)]
    return [pool[i % distinct] for i in range(n)]


WEIGHT_OPS = ("FULLY_CONNECTED", "CONV_2D", "DEPTHWISE_CONV_2D")


def weight_bytes(path):
    """(bytes read per invoke, distinct bytes) of the model's weight tensors: XNNPACK packs the
    weights of every node for itself, so a weight tensor that N nodes share (the head's
    recurrent kernel, once per unrolled step) is read N times per invoke from N packed copies."""
    from edge.backends.litert import interpreter_module

    module = interpreter_module()
    interpreter = module.Interpreter(
        model_path=path,
        experimental_op_resolver_type=module.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    interpreter.allocate_tensors()
    tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
    per_node, distinct = 0, {}
    for op in interpreter._get_ops_details():  # no public API for ops
        if op["op_name"] in WEIGHT_OPS:
            weight = tensors[op["inputs"][1]]
            size = int(np.prod(weight["shape"])) * np.dtype(weight["dtype"]).itemsize
            per_node += size
            distinct[weight["index"]] = size
    return per_node, sum(distinct.values())


def head_placement(model_dir, threads):
    """Where the head's nodes run as the runner loads it (:mod:`edge.bench.placement`)."""
    from edge.bench import placement
    from edge.session import ModelSession

    session = ModelSession(model_dir, threads=threads)
    return placement.placement(placement.op_details(session.head_interpreter))


def peak_rss_mb():
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024.0 if sys.platform != "darwin" else peak / (1024.0 * 1024.0)


def camera_rss(model_dir, frames, threads):
    """Peak RSS (MB) of a fresh process that does what the camera does: edge + runner + frames."""
    code = ("import sys, json; sys.path.insert(0, %r)\n"
            "from benchmarks.bench_streaming import synthetic_frames, peak_rss_mb\n"
            "from edge.runner import StreamingRunner\n"
            "r = StreamingRunner(%r, threads=%d, stride=1)\n"
            "w = sum(len(r.process(f, i)) for i, f in enumerate(synthetic_frames(%d)))\n"
            "tf = [m for m in sys.modules if m.split('.')[0] == 'tensorflow']\n"
            "print(json.dumps({'rss': peak_rss_mb(), 'windows': w, 'tf': tf}))\n"
            % (ROOT, model_dir, threads, frames))
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


class _Samples(object):
    """Per-call CPU time (this process, all threads) and wall time, in seconds."""

    def __init__(self):
        self.cpu, self.wall = [], []

    def time(self, fn, *args):
        c, w = time.process_time(), time.perf_counter()
        fn(*args)
        self.wall.append(time.perf_counter() - w)
        self.cpu.append(time.process_time() - c)

    def median(self, clock):
        return float(np.median(getattr(self, clock)))


def bench(model_dir, frames, threads, repeats, resize="fast"):
    """Medians of per-call samples, interleaved call by call (runner frame, raw frame+head,
    and every T-th frame one clip invoke), so load from other processes hits all alike.

    Two clocks: CPU time of this process (what a decision costs; insensitive to the process
    being descheduled on a shared machine) and wall time.
    """
    from edge.interpreter import make_interpreter
    from edge.runner import StreamingRunner

    runner = StreamingRunner(model_dir, threads=threads, stride=1, resize=resize)
    T = runner.clip_length
    frame_i, head_i = runner.frame_interpreter, runner.head_interpreter
    step_i = runner.session.step_interpreter  # None for directories before schema 4
    invoke_step = step_i.invoke if step_i is not None else (lambda: None)
    clip = make_interpreter(os.path.join(model_dir, runner.manifest.models["clip"].file),
                            threads=threads)
    n = len(frames)
    for i in range(T + 2):  # warm up: first-frame checks, caches, XNNPACK weight packing
        runner.process(frames[i % n], frame_index=i)
    clip.invoke()
    pre = runner._preprocessors[0]
    view = runner.session.frame_input()
    pre_dst = view[0].copy()  # not the tensor: keep no view alive across invoke()
    del view

    def raw():
        frame_i.invoke()
        invoke_step()
        head_i.invoke()

    samples = {k: _Samples() for k in ("runner", "raw", "frame", "step", "head", "head_warm",
                                       "clip", "preprocess")}
    index = T + 2
    windows = runner.windows
    # The "decoder" writes each frame into one reused buffer right before the runner reads it,
    # as edge.sources.FrameSource does (cap.read into the same array); that copy is untimed.
    decoded = np.empty_like(frames[0])
    for _ in range(repeats):
        for i, frame in enumerate(frames):
            np.copyto(decoded, frame)
            samples["runner"].time(runner.process, decoded, index)
            index += 1
            samples["raw"].time(raw)
            if i % T == 0:
                samples["frame"].time(frame_i.invoke)
                samples["step"].time(invoke_step)  # after the frame model, as streaming runs it
                samples["head"].time(head_i.invoke)
                samples["head_warm"].time(head_i.invoke)  # again: its weights still in cache
                np.copyto(decoded, frame)
                samples["preprocess"].time(pre, decoded, pre_dst)
                samples["clip"].time(clip.invoke)
    assert runner.windows - windows == repeats * n  # stride 1, warm: one window per frame
    result = {"T": T, "frames": n, "repeats": repeats, "clip_samples": len(samples["clip"].cpu)}
    for clock in ("cpu", "wall"):
        m = {k: v.median(clock) for k, v in samples.items()}
        m["window"] = m["step"] + m["head"]  # what the head did before the step model
        m["overhead"] = (m["runner"] - m["preprocess"]) / m["raw"] - 1.0
        m["per_f"] = m["runner"] / m["frame"]
        m["ratio"] = m["runner"] / m["clip"]
        m["ratio_raw"] = m["raw"] / m["clip"]
        result[clock] = m
    return result


def stage_breakdown(model_dir, frames, threads, resize="fast", warmup=100):
    """Where the runner's per-frame time goes, stage by stage, through its own objects: each
    window input's push and head fill, the step and head invokes, and the rest of
    ``StreamingRunner.process`` (bookkeeping, task decoding, the result), as medians (us) over
    ``frames`` after ``warmup`` (stride 1). Each stage is timed by a wrapper around the runner's
    own method, so it costs what it costs inside ``process`` (cold after the frame invoke, as
    there), plus ~0.1 us of timer per stage.
    """
    from edge.runner import StreamingRunner

    runner = StreamingRunner(model_dir, threads=threads, stride=1, resize=resize)
    session, ring = runner.session, runner.rings[0]
    clock = time.perf_counter
    spent = {}

    def timed(name, fn):
        spent[name] = 0.0

        def wrapper(*args):
            t0 = clock()
            value = fn(*args)
            spent[name] += clock() - t0
            return value
        return wrapper

    for window in ring.windows:
        window.store = timed("push %s" % window.reduce, window.store)
        window.window_into = timed("head input %s" % window.reduce, window.window_into)
    runner._preprocessors[0] = timed("preprocess", runner._preprocessors[0])
    frame_invoke = session.frame_interpreter.invoke  # the native one (edge.backends.litert)
    session.frame_interpreter.invoke = timed("frame invoke", frame_invoke)
    session.push_outputs = timed("push", session.push_outputs)
    session.run_head = timed("head", session.run_head)
    samples = {}
    decoded = np.empty_like(frames[0])  # one reused buffer, as a capture decodes into
    for i in range(warmup + len(frames)):
        np.copyto(decoded, frames[i % len(frames)])
        for name in spent:
            spent[name] = 0.0
        t0 = clock()
        runner.process(decoded, i)
        total = clock() - t0
        if i < warmup:
            continue
        stages = dict(spent)
        # what the outer wrappers hold beyond the inner ones: the push's and the head's own code
        pushes = [k for k in stages if k.startswith("push ")]
        fills = [k for k in stages if k.startswith("head input ")]
        stages["step invoke"] = session.last_step_s
        stages["head invoke"] = session.last_head_s
        if "push recurrent" in stages:
            stages["push recurrent"] -= session.last_step_s  # the step invokes inside it
        stages["push: ring bookkeeping"] = stages.pop("push") - sum(
            stages[k] for k in pushes) - session.last_step_s
        stages["head: reset, decode tasks"] = stages.pop("head") - sum(
            stages[k] for k in fills) - session.last_head_s
        stages["process(): the rest"] = total - sum(stages.values())
        stages["total"] = total
        for name, value in stages.items():
            samples.setdefault(name, []).append(value)
    for name in ("push_outputs", "run_head"):
        delattr(session, name)
    session.frame_interpreter.invoke = frame_invoke
    return {name: float(np.median(v)) * 1e6 for name, v in samples.items()}


def cold_after_invoke(model_dir, threads, samples=300):
    """Why the runner's overhead does not shrink with fewer calls: microseconds (wall medians)
    of one small numpy call (a 1000-byte ``np.copyto``) and of one ``tensor()`` view, right
    after a frame invoke, repeated at once, and in a loop with no invoke in between."""
    from edge.session import ModelSession

    session = ModelSession.shared(model_dir, threads=threads)
    invoke, view = session.frame_interpreter.invoke, session.frame_input
    a, b = np.zeros(1000, np.uint8), np.ones(1000, np.uint8)
    clock = time.perf_counter

    def copy():
        np.copyto(a, b)

    def make_view():
        v = view()
        del v

    result = {}
    for name, fn in (("copy", copy), ("view", make_view)):
        first, again, loop = [], [], []
        for _ in range(samples):
            invoke()
            t0 = clock()
            fn()
            t1 = clock()
            fn()
            again.append(clock() - t1)
            first.append(t1 - t0)
        for _ in range(samples):
            t0 = clock()
            fn()
            loop.append(clock() - t0)
        result[name] = [float(np.median(x)) * 1e6 for x in (first, again, loop)]
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", help="model directory (manifest.json + frame/head/clip)")
    parser.add_argument("--keep", help="build the models into this directory and keep them")
    parser.add_argument("--build", help=argparse.SUPPRESS)  # the TensorFlow subprocess
    parser.add_argument("--backbone", default="efficientnet_b3",
                        help="backbone of the models built when --model is not given")
    parser.add_argument("--size", type=int, default=100, help="input size of built models")
    parser.add_argument("--clip-length", type=int, default=15)
    parser.add_argument("--frames", type=int, default=60, help="frames per timed pass")
    parser.add_argument("--repeats", type=int, default=5, help="timed passes")
    parser.add_argument("--threads", type=int, default=1, help="interpreter threads")
    parser.add_argument("--resize", default="fast", choices=["fast", "area"])
    parser.add_argument("--stages", type=int, metavar="N", default=0,
                        help="also time each stage of the runner's hot path over N frames")
    args = parser.parse_args(argv)

    if args.build:
        build_models(args.build, args.backbone, args.size, args.clip_length)
        return

    tmp = None
    model_dir = args.model
    if model_dir is None:
        if args.keep:
            model_dir = args.keep
        else:
            tmp = tempfile.mkdtemp(prefix="edgekit-bench-")
            model_dir = os.path.join(tmp, "models")
        t0 = time.time()
        build_in_subprocess(model_dir, args.backbone, args.size, args.clip_length)
        print("built %s models (T=%d) in %.0f s: %s" % (args.backbone, args.clip_length,
                                                        time.time() - t0, model_dir))
    try:
        rss = camera_rss(model_dir, 200, args.threads)
        frames = synthetic_frames(args.frames)
        r = bench(model_dir, frames, args.threads, args.repeats, args.resize)
        roles = [role for role in ("step", "head")
                 if os.path.exists(os.path.join(model_dir, role + ".tflite"))]
        read = [weight_bytes(os.path.join(model_dir, role + ".tflite")) for role in roles]
        where = head_placement(model_dir, args.threads)
        stages = cold = None
        if args.stages:
            stages = stage_breakdown(model_dir, synthetic_frames(args.stages), args.threads,
                                     args.resize)
            cold = cold_after_invoke(model_dir, args.threads)
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    ms = lambda v: "%.3f ms" % (v * 1e3)  # noqa: E731
    print("command: %s" % " ".join(["python"] + sys.argv))
    print("model: %s  T=%d  threads=%d  resize=%s  VGA frames/pass=%d  passes=%d  clip samples=%d"
          % (model_dir, r["T"], args.threads, args.resize, r["frames"], r["repeats"],
             r["clip_samples"]))
    for clock, label in (("cpu", "CPU time of the process (primary)"),
                         ("wall", "wall time (shared machine: noisier)")):
        m = r[clock]
        print("%s, medians per call:" % label)
        print("  frame invoke F %s, step invoke S %s, head invoke %s (back to back: %s), clip "
              "invoke %s, preprocess %s per VGA frame"
              % (ms(m["frame"]), ms(m["step"]), ms(m["head"]), ms(m["head_warm"]), ms(m["clip"]),
                 ms(m["preprocess"])))
        print("  (a) cost per decision: streaming %s = %.2f x F (target <= %.2f x F): %s; "
              "vs the clip model %s: 1/%.1f" % (
                  ms(m["runner"]), m["per_f"], TARGET_PER_F,
                  "met" if m["per_f"] <= TARGET_PER_F else "MISSED", ms(m["clip"]),
                  1 / m["ratio"]))
        batched = (m["clip"] - m["window"]) / r["T"]  # the clip model's cost per frame, F'
        print("      head H = step + head %s after the frame model (target <= %.2f ms): %s; "
              "bound: raw F+H vs clip = 1/%.1f; the clip model runs a frame for F' = "
              "(clip - H)/T = %s (batched, vs F); with H = 0: F/clip = 1/%.1f"
              % (ms(m["window"]), TARGET_HEAD_MS,
                 "met" if m["window"] * 1e3 <= TARGET_HEAD_MS else "MISSED",
                 1 / m["ratio_raw"], ms(batched), m["clip"] / m["frame"]))
        print("  (b) per frame: runner %s - preprocess %s vs raw invoke() %s -> overhead %.1f %% "
              "(target <= %d %%): %s" % (ms(m["runner"]), ms(m["preprocess"]), ms(m["raw"]),
                                         100 * m["overhead"], 100 * TARGET_OVERHEAD,
                                         "met" if m["overhead"] <= TARGET_OVERHEAD else "MISSED"))
    print("(c) peak RSS of a camera process (edge + runner, 200 VGA frames, TensorFlow loaded: "
          "%s): %.1f MB (target < 150 MB): %s; this process (also holds clip.tflite): %.1f MB"
          % (bool(rss["tf"]), rss["rss"], "met" if rss["rss"] < TARGET_RSS_MB else "MISSED",
             peak_rss_mb()))
    print("(d) %s weights read per window (stride 1): %.2f MB in XNNPACK's per-node packed "
          "copies, for %.2f MB of distinct weights (each node packs its own copy)"
          % (" + ".join(roles), sum(p for p, _ in read) / 1e6, sum(d for _, d in read) / 1e6))
    print("    head graph: %d nodes, %d on %s in %d partition(s), %d on the built-in kernels%s "
          "(target: every op delegated, one partition): %s"
          % (where["nodes"], where["delegated"], where["delegate"], where["partitions"],
             where["cpu"], " (%s)" % ", ".join("%s x%d" % kv for kv in sorted(
                 where["ops_cpu"].items())) if where["ops_cpu"] else "",
             "met" if where["cpu"] == 0 and where["partitions"] == 1 else "MISSED"))
    if stages is not None:
        print("(e) per frame, stage by stage through the runner's own methods, medians of %d "
              "frames (us; wall): %s" % (args.stages, ", ".join(
                  "%s %.1f" % kv for kv in stages.items())))
        print("    one call right after the frame invoke / repeated at once / in a loop (us): "
              "1000-byte np.copyto %.1f / %.1f / %.1f, tensor() view %.1f / %.1f / %.1f"
              % tuple(cold["copy"] + cold["view"]))

if __name__ == "__main__":
    main()
