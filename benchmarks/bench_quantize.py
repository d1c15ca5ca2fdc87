"""Float vs PTQ vs QAT vs prune-QAT on one trained run: accuracy per task and file sizes.

    python benchmarks/bench_quantize.py --run RUN [--epochs 2] [--calibration 200] [--b3]

Without --run, synthesizes a small swimmer set and trains a test_tiny run first. Prints the
figures the issue's targets are stated in, on the run's held-out test split:

* action / identity accuracy and identity rank-1 of float Keras, fake-quant Keras (QAT
  methods) and the TFLite frame+head files (what the camera runs), per method;
* raw and gzip sizes of frame/head, the int8 vs fp32 frame size ratio, prune-qat gzip vs
  plain int8 (ptq) gzip;
* with --b3: the int8 vs fp32 size ratio of a random-weights EfficientNet-B3 frame model
  (the seed's backbone; sizes do not depend on the weights' values).
"""

import argparse
import os
import tempfile

import numpy as np

METHODS = ("fp32", "ptq", "qat", "prune-qat")


def _cell(metrics):
    identity = metrics["identity"]
    return "%.3f  %.3f  %.3f" % (metrics["action"]["accuracy"], identity["accuracy"],
                                 identity.get("rank1", float("nan")))


def efficientnet_b3_ratio(size=100, calibration=8):
    from quantize.backbones import build_backbone
    from quantize.quantization.convert import convert
    from quantize.tf_compat import keras

    inputs = keras.Input((size, size, 3))
    frame = keras.Model(inputs, build_backbone("efficientnet_b3", inputs, None))
    rng = np.random.default_rng(0)
    samples = [rng.uniform(0, 255, (size, size, 3)).astype(np.float32) for _ in range(calibration)]
    fp32 = convert(frame, (1, size, size, 3), "frame", "fp32", output_name="features")
    int8 = convert(frame, (1, size, size, 3), "frame", "ptq", samples, "uint8", "int8", "features")
    return fp32, int8


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--run", default=None)
    parser.add_argument("--out", default=None, help="Folder for the model directories [temp].")
    parser.add_argument("--epochs", type=int, default=2, help="QAT / pruning fine-tuning epochs.")
    parser.add_argument("--train-epochs", type=int, default=15)
    parser.add_argument("--backbone", default="test_tiny")
    parser.add_argument("--size", type=int, default=48)
    parser.add_argument("--clip-length", type=int, default=8)
    parser.add_argument("--calibration", type=int, default=200)
    parser.add_argument("--sparsity", type=float, default=0.5)
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--b3", action="store_true", help="Also the EfficientNet-B3 frame size ratio.")
    args = parser.parse_args()

    from quantize.quantization.pipeline import quantize_run

    work = args.out or tempfile.mkdtemp(prefix="bench_quantize_")
    run = args.run
    if run is None:
        from quantize.data.synth import synthesize_swimmers
        from quantize.train import train

        data = os.path.join(work, "data")
        synthesize_swimmers(data, clips_per_pair=8, frames=args.clip_length,
                            size=(args.size, args.size), seed=0)
        run = os.path.join(work, "run")
        train(data, run, task="swim", backbone=args.backbone, size=(args.size, args.size),
              clip_length=args.clip_length, head_size="tiny", epochs=args.train_epochs,
              batch_size=8, seed=0, verbose=0)
    reports = {}
    for method in args.methods.split(","):
        reports[method] = quantize_run(run, os.path.join(work, method), method,
                                       sparsity=args.sparsity if method == "prune-qat" else None,
                                       epochs=args.epochs, calibration=args.calibration, verbose=0,
                                       clip_model=False, layer_errors=False)
    first = next(iter(reports.values()))
    print("run %s, %d held-out test clips; cells: action acc, identity acc, identity rank-1"
          % (run, first["test_clips"]))
    print("%-10s %-20s %-20s %-20s %9s %9s %9s %9s" % (
        "method", "float Keras", "fake-quant Keras", "TFLite frame+head", "frame", "frame gz",
        "head", "head gz"))
    for method, report in reports.items():
        m = report["metrics"]
        fq = _cell(m["fake_quant_keras"]) if "fake_quant_keras" in m else "-"
        art = report["artifacts"]
        print("%-10s %-20s %-20s %-20s %9d %9d %9d %9d" % (
            method, _cell(m["float_keras"]), fq, _cell(m["tflite"]), art["frame"]["raw_bytes"],
            art["frame"]["gzip_bytes"], art["head"]["raw_bytes"], art["head"]["gzip_bytes"]))
    if "fp32" in reports and "ptq" in reports:
        print("int8 frame vs fp32 frame (raw, this backbone): %.2fx smaller" % (
            reports["fp32"]["artifacts"]["frame"]["raw_bytes"]
            / reports["ptq"]["artifacts"]["frame"]["raw_bytes"]))
    if "prune-qat" in reports and "ptq" in reports:
        total = lambda r: sum(r["artifacts"][a]["gzip_bytes"] for a in ("frame", "head"))  # noqa
        print("prune-qat %.2f gzip (frame+head) / plain int8 (ptq): %.2fx" % (
            args.sparsity, total(reports["prune-qat"]) / total(reports["ptq"])))
        print("prune-qat achieved sparsity on pruned layers: %.3f overall, min per layer %.3f" % (
            reports["prune-qat"]["sparsity_overall"],
            min(reports["prune-qat"]["sparsity_per_layer"].values())))
    if args.b3:
        import gzip

        fp32, int8 = efficientnet_b3_ratio()
        gz = [len(gzip.compress(bytes(b), 9)) for b in (fp32, int8)]
        print("EfficientNet-B3 frame (random weights, 100x100): fp32 %d B, int8 %d B, %.2fx "
              "smaller raw; gzip %d B vs %d B, %.2fx" % (len(fp32), len(int8), len(fp32) / len(int8),
                                                         gz[0], gz[1], gz[0] / gz[1]))


if __name__ == "__main__":
    main()
