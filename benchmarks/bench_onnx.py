"""ONNX Runtime beside LiteRT on the same artifact, in one run: frame-model invoke() latency and
int8 parity.

For a model directory with the ONNX variants (``edgekit export --model DIR``) it loads, in one
process and with the same thread count,

- ``litert``: frame.tflite on LiteRT with XNNPACK (what ``edgekit run`` uses by default),
- ``onnxruntime``: frame.onnx (the QDQ int8 export) on ONNX Runtime's CPU provider,
- ``onnxruntime:fp32``: frame_fp32.onnx (the same weights at float activations),
- ``onnxruntime:trt_int8``: frame_trt_int8.onnx (the symmetric QDQ graph TensorRT's int8 engine
  is built from, here on ONNX Runtime's CPU provider),

through edgekit's own backends (:func:`edge.interpreter.make_interpreter`), feeds each the same
preprocessed frames, and times ``invoke()`` in blocks of ``--runs`` calls, the backends taking
turns block by block for ``--rounds`` rounds so background load hits all alike (one block per
backend at a time: ONNX Runtime's pool spins briefly after a run, which would otherwise land in
LiteRT's timings). It prints per backend the median and p90 over all timed calls, and the max
difference of each ONNX output from frame.tflite's in int8 output steps.

    python benchmarks/bench_onnx.py --model quickstart/models --threads 2
    python benchmarks/bench_onnx.py --model /tmp/b3_onnx --threads 2 --runs 30 --rounds 5
"""

import argparse
import json
import os
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

BACKENDS = (("litert", "cpu", "tflite"), ("onnxruntime", "onnxruntime", "onnx"),
            ("onnxruntime:fp32", "onnxruntime:fp32", "onnx_fp32"),
            ("onnxruntime:trt_int8", "onnxruntime:trt_int8", "onnx_trt_int8"))


def frames(model_dir, count, seed=0):
    """``count`` uint8 inputs: smooth moving patterns plus noise, through edgekit's
    preprocessing (the camera's path), at the model's input size."""
    from edge.session import ModelSession

    session = ModelSession(model_dir, verify=False)
    pre = session.new_preprocessor("RGB")
    height, width = 480, 640
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    rng = np.random.default_rng(seed)
    out = np.empty((count,) + tuple(session.frame_in_spec.shape[1:]), np.uint8)
    for t in range(count):
        rgb = np.stack([np.sin((xx + 9 * t) / (23.0 + 11 * c)) * np.cos(yy / (31.0 + 7 * c))
                        for c in range(3)], axis=-1)
        rgb = np.clip(128 + 100 * rgb + rng.normal(0, 12, rgb.shape), 0, 255).astype(np.uint8)
        pre(rgb, out[t])
    return out


def load(model_dir, threads):
    from edge.interpreter import make_interpreter
    from edge.manifest import Manifest

    manifest = Manifest.load(model_dir)
    loaded = []
    for name, device, variant in BACKENDS:
        if variant == "onnx" and variant not in manifest.variants:
            sys.exit("%s has no onnx variant; run first: edgekit export --model %s"
                     % (model_dir, model_dir))
        if variant != "tflite" and variant not in manifest.variants:
            print("(%s: no %s variant in %s, skipped)" % (name, variant, model_dir))
            continue
        path = manifest.model_path(model_dir, "frame", variant)
        loaded.append((name, make_interpreter(path, device=device, threads=threads)))
    return loaded


def run_once(interpreter, pixels):
    """One frame through ``interpreter``: every output dequantized (in frame.tflite output
    steps of the reference when ``steps`` is given), flattened, concatenated in name order."""
    detail = interpreter.get_input_details()[0]
    view = interpreter.tensor(detail["index"])()
    np.copyto(view[0], pixels, casting="unsafe")  # uint8 -> float32 for the fp32 variant
    del view
    interpreter.invoke()
    values = []
    for out in _outputs(interpreter):
        value = interpreter.get_tensor(out["index"]).astype(np.float64).reshape(-1)
        scale, zero_point = out["quantization"]
        values.append((value - zero_point) * scale if scale else value)
    return values


def _outputs(interpreter):
    """Output details in signature-name order (TFLite tensor names differ from the ONNX ones)."""
    from edge.tflite_inspect import signature_indices

    by_index = {d["index"]: d for d in interpreter.get_output_details()}
    named = signature_indices(interpreter)["outputs"]
    if not named:
        return sorted(by_index.values(), key=lambda d: d["name"])
    return [by_index[named[name]] for name in sorted(named)]


def parity(loaded, inputs):
    """{backend: max |output - frame.tflite's| in frame.tflite output steps} over ``inputs``,
    the worst over every frame output."""
    reference = loaded[0][1]
    steps = [d["quantization"][0] for d in _outputs(reference)]
    result = {}
    for name, interpreter in loaded[1:]:
        worst = 0.0
        for pixels in inputs:
            for want, got, step in zip(run_once(reference, pixels), run_once(interpreter, pixels),
                                       steps):
                worst = max(worst, float(np.abs(got - want).max() / step))
        result[name] = round(worst, 2)
    return result


def time_blocks(loaded, inputs, runs, rounds, warmup):
    times = {name: [] for name, _ in loaded}
    for name, interpreter in loaded:
        for i in range(warmup):
            run_once(interpreter, inputs[i % len(inputs)])
    for _ in range(rounds):
        for name, interpreter in loaded:
            for i in range(runs):
                detail = interpreter.get_input_details()[0]
                view = interpreter.tensor(detail["index"])()
                np.copyto(view[0], inputs[i % len(inputs)], casting="unsafe")
                del view
                start = time.perf_counter()
                interpreter.invoke()
                times[name].append(time.perf_counter() - start)
    return times


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="model directory with the ONNX variants")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=30, help="invoke() calls per block")
    parser.add_argument("--rounds", type=int, default=5, help="blocks per backend")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--frames", type=int, default=8, help="distinct inputs (parity, timing)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead")
    args = parser.parse_args(argv)
    import onnxruntime
    from edge import __version__

    loaded = load(args.model, args.threads)
    inputs = frames(args.model, args.frames)
    steps = parity(loaded, inputs)
    times = time_blocks(loaded, inputs, args.runs, args.rounds, args.warmup)
    rows = {name: {"median_ms": round(1e3 * float(np.median(t)), 3),
                   "p90_ms": round(1e3 * float(np.percentile(t, 90)), 3), "runs": len(t),
                   "max_steps_vs_tflite": steps.get(name, 0.0)} for name, t in times.items()}
    report = {"model": os.path.abspath(args.model), "threads": args.threads,
              "onnxruntime": onnxruntime.__version__, "edgekit": __version__, "rows": rows}
    if args.json:
        print(json.dumps(report))
        return
    print("model %s, %d threads, onnxruntime %s" % (report["model"], args.threads,
                                                   onnxruntime.__version__))
    print("%-22s %10s %10s %6s %14s" % ("backend", "median ms", "p90 ms", "runs",
                                         "max steps"))
    for name, row in rows.items():
        print("%-22s %10.3f %10.3f %6d %14s" % (name, row["median_ms"], row["p90_ms"],
                                                 row["runs"], row["max_steps_vs_tflite"]))


if __name__ == "__main__":
    main()
