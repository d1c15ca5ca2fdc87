"""Our latency figures vs LiteRT's own benchmark tool, on the same .tflite and thread count.

``edgekit bench`` times a model the way LiteRT's ``benchmark_model`` does (init, first inference,
warm-up, >= N runs and >= M seconds; median = p50). This script checks the figures agree: for each
model it runs, in fresh processes and interleaved round by round so background load hits both
alike,

- ours: :func:`edge.bench.device.time_model` (the Interpreter API with XNNPACK, what the device
  runner uses), and
- LiteRT's: ``python -m ai_edge_litert.tools.benchmark_litert_model`` (ai-edge-litert ships this
  Python port of the C++ ``benchmark_model``; it uses the CompiledModel API and rounds its
  results to 0.01 ms),

and prints both medians, the difference and whether it is within the 5 % target. Models the
LiteRT tool cannot load (2.3.0 refuses models with variable tensors, e.g. a head or clip model
with a fused UNIDIRECTIONAL_SEQUENCE_LSTM: "Variable tensors not yet supported"; edgekit's
unrolled LSTM has none) are reported as such, with no number.

    python benchmarks/bench_vs_litert.py                      # builds EfficientNet-B3 int8 models
    python benchmarks/bench_vs_litert.py --model quickstart/models --threads 2
    python benchmarks/bench_vs_litert.py --model runs/swim/int8/frame.tflite --rounds 5

``--tflite FILE`` compares the whole command instead: ``edgekit bench --device local --model
FILE`` (the harness, its job file and its measuring process, reading p50 from its results) against
the tool, on any .tflite, e.g. one edgekit did not make; ``--build-foreign FILE`` first writes
such a model (a tf.keras MobileNetV2, alpha 0.35, 96x96, random weights, int8 by the plain
TFLiteConverter: tests/fixtures/foreign.py):

    python benchmarks/bench_vs_litert.py --build-foreign /tmp/mnv2.tflite --tflite /tmp/mnv2.tflite
    python benchmarks/bench_vs_litert.py --build-foreign /tmp/m224.tflite --foreign-size 224 \
        --foreign-alpha 1.0 --tflite /tmp/m224.tflite --runs 50
"""

import argparse
import glob
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

TOOL = "ai_edge_litert.tools.benchmark_litert_model"
OURS = ("import json, sys; from edge.bench.device import time_model; "
        "lat, _, _ = time_model(sys.argv[1], 'frame', threads=int(sys.argv[2]), "
        "runs=int(sys.argv[3]), min_seconds=0.0, warmup_runs=int(sys.argv[4]), "
        "warmup_seconds=0.0); print(json.dumps(lat))")


def tool_available():
    try:
        import importlib.util
        return importlib.util.find_spec(TOOL) is not None
    except ImportError:
        return False


def ours(path, threads, runs, warmup):
    proc = subprocess.run([sys.executable, "-c", OURS, path, str(threads), str(runs),
                           str(warmup)], cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        return None, proc.stderr.strip().splitlines()[-1]
    latency = json.loads(proc.stdout.strip().splitlines()[-1])
    return latency["p50_ms"], None


def ours_cli(path, threads, runs, warmup):
    """p50 of ``edgekit bench --device local --model PATH`` (no devices.toml needed)."""
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, PYTHONPATH=ROOT, EDGEKIT_DEVICES=os.path.join(tmp, "none.toml"))
        proc = subprocess.run([sys.executable, "-m", "edge.cli", "bench", "--device", "local",
                               "--model", path, "--threads", str(threads), "--runs", str(runs),
                               "--min-seconds", "0", "--warmup-seconds", "0", "--out",
                               os.path.join(tmp, "out"), "--json"], cwd=tmp, env=env,
                              capture_output=True, text=True)
        if proc.returncode != 0:
            return None, (proc.stderr.strip().splitlines() or ["exit %d" % proc.returncode])[-1]
        record = json.loads(proc.stdout)["records"][0]
        return record["latency"]["model"]["p50_ms"], None


def build_foreign(path, size=96, alpha=0.35):
    """tests/fixtures/foreign.py's int8 MobileNetV2 at ``path`` (TensorFlow, in a subprocess);
    1000 classes at alpha 1.0 (the ImageNet shape), else 10 as in the test."""
    env = dict(os.environ, TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="3",
               CUDA_VISIBLE_DEVICES="", PYTHONPATH=ROOT)
    code = ("import sys; from tests.fixtures.foreign import build_mobilenet_v2_int8; "
            "build_mobilenet_v2_int8(sys.argv[1], size=int(sys.argv[2]), "
            "alpha=float(sys.argv[3]), classes=1000 if float(sys.argv[3]) == 1.0 else 10)")
    proc = subprocess.run([sys.executable, "-c", code, path, str(size), str(alpha)], cwd=ROOT,
                          env=env,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit("building the MobileNetV2 failed:\n" + proc.stderr[-3000:])


def litert(path, threads, runs, warmup):
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "r.json")
        proc = subprocess.run([sys.executable, "-m", TOOL, "--model", path, "--num_threads",
                               str(threads), "--num_runs", str(runs), "--warmup_runs",
                               str(warmup), "--result_json", out], capture_output=True,
                              text=True)
        if proc.returncode != 0 or not os.path.isfile(out):
            errors = [l for l in (proc.stdout + proc.stderr).splitlines()
                      if "ERROR" in l and "plugin" not in l.lower()]
            return None, (errors[0].strip() if errors else "exit %d" % proc.returncode)
        with open(out) as handle:
            return json.load(handle)["latency"]["median_ms"], None


def build_models(directory, backbone, size):
    """The swim MTDNN with random weights as int8 frame/head/clip, built by
    benchmarks/bench_streaming.py's TensorFlow subprocess (the quantize converter)."""
    env = dict(os.environ, TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="3",
               CUDA_VISIBLE_DEVICES="")
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "bench_streaming.py"),
                           "--build", directory, "--backbone", backbone, "--size", str(size),
                           "--clip-length", "15"], cwd=ROOT, env=env, capture_output=True,
                          text=True)
    if proc.returncode != 0:
        sys.exit("building the models failed:\n" + proc.stderr[-3000:])


def models_of(target):
    if os.path.isdir(target):
        return sorted(glob.glob(os.path.join(target, "*.tflite")))
    return [target]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", help=".tflite file or a model directory (all its .tflite)")
    parser.add_argument("--tflite", help="a .tflite file timed by the 'edgekit bench --model "
                                         "FILE' command (not the timing function alone)")
    parser.add_argument("--build-foreign", metavar="FILE",
                        help="first write a MobileNetV2 int8 .tflite edgekit did not make")
    parser.add_argument("--foreign-size", type=int, default=96, help="its input size")
    parser.add_argument("--foreign-alpha", type=float, default=0.35, help="its width multiplier")
    parser.add_argument("--backbone", default="efficientnet_b3",
                        help="backbone of the models built when --model is not given "
                             "(efficientnet_b3, mbconv_micro, test_tiny)")
    parser.add_argument("--size", type=int, default=100, help="input size of built models")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds per tool")
    parser.add_argument("--target", type=float, default=5.0, help="agreement target in %%")
    args = parser.parse_args(argv)

    if not tool_available():
        print("LiteRT's benchmark tool (%s) is not installed with this ai-edge-litert; "
              "no comparison possible, no numbers reported." % TOOL)
        return 2
    if args.build_foreign:
        t0 = time.time()
        build_foreign(args.build_foreign, args.foreign_size, args.foreign_alpha)
        print("built %s (MobileNetV2 alpha %g, %dx%d, random weights, int8 by TFLiteConverter) "
              "in %.0f s" % (args.build_foreign, args.foreign_alpha, args.foreign_size,
                             args.foreign_size, time.time() - t0))
    measure = ours_cli if args.tflite else ours
    target = args.tflite or args.model
    if target is None:
        tmp = tempfile.mkdtemp(prefix="edgekit-vs-litert-")
        target = os.path.join(tmp, "models")
        t0 = time.time()
        build_models(target, args.backbone, args.size)
        print("built %s int8 models (random weights) in %.0f s: %s"
              % (args.backbone, time.time() - t0, target))
    import ai_edge_litert
    print("ai-edge-litert %s, threads %d, %d runs + %d warm-up per measurement, %d interleaved "
          "rounds; median latency (p50) in ms" % (getattr(ai_edge_litert, "__version__", "?"),
                                                   args.threads, args.runs, args.warmup,
                                                   args.rounds))
    print("edgekit side: %s" % ("the 'edgekit bench --device local --model FILE' command"
                                if args.tflite else "edge.bench.device.time_model"))
    print("%-16s %12s %12s %9s  %s" % ("model", "edgekit", "litert tool", "diff", "verdict"))
    worst = 0.0
    for path in models_of(target):
        mine, theirs, problem = [], [], None
        for _ in range(args.rounds):
            a, err_a = measure(path, args.threads, args.runs, args.warmup)
            b, err_b = litert(path, args.threads, args.runs, args.warmup)
            if err_a or err_b:
                problem = ("edgekit failed: %s" % err_a) if err_a else \
                    ("LiteRT's tool cannot run it: %s" % err_b)
                break
            mine.append(a)
            theirs.append(b)
        name = os.path.basename(path)
        if problem:
            print("%-16s %12s %12s %9s  %s" % (name, "%.3f" % np.median(mine) if mine else "-",
                                              "-", "-", problem))
            continue
        a, b = float(np.median(mine)), float(np.median(theirs))
        diff = 100.0 * (a - b) / b
        worst = max(worst, abs(diff))
        # the fastest round of each, too: on a shared machine a neighbour's load moves whole
        # rounds, and the least-disturbed round of each tool is the fairer pair
        print("%-16s %12.3f %12.3f %8.1f%%  %s  (fastest round: ours %.3f, tool %.2f; rounds: "
              "ours %s; tool %s)" % (
                  name, a, b, diff, "within %g %%" % args.target if abs(diff) <= args.target
                  else "OUTSIDE %g %%" % args.target, min(mine), min(theirs),
                  ", ".join("%.3f" % v for v in mine), ", ".join("%.2f" % v for v in theirs)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
