"""Float vs PTQ vs QAT vs prune-QAT on one run: accuracy per task and file sizes (raw/gzip).

    python benchmarks/bench_quantize.py [--run RUN] [--epochs N] [--backbone efficientnet_b0]

Without --run, synthesizes a small swimmer set and trains a run first (slow on CPU). Prints the
figures the issue's targets are stated in: action/identity accuracy of float Keras and each
method's TFLite frame+head, int8 frame size vs fp32, prune-qat gzip size vs plain int8.
"""

import argparse
import os
import tempfile


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--run", default=None)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--train-epochs", type=int, default=15)
    parser.add_argument("--backbone", default="test_tiny")
    parser.add_argument("--size", type=int, default=48)
    parser.add_argument("--clip-length", type=int, default=8)
    parser.add_argument("--calibration", type=int, default=200)
    args = parser.parse_args()

    from quantize.quantization.pipeline import quantize_run

    work = tempfile.mkdtemp(prefix="bench_quantize_")
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
    for method in ("fp32", "ptq", "qat", "prune-qat"):
        reports[method] = quantize_run(run, os.path.join(work, method), method,
                                       sparsity=0.5 if method == "prune-qat" else None,
                                       epochs=args.epochs, calibration=args.calibration, verbose=0)
    print("%-10s %-9s %-9s %-9s %-9s %10s %10s" % ("method", "action", "identity", "act(K)", "id(K)",
                                                  "frame raw", "frame gz"))
    for method, report in reports.items():
        tfl = report["metrics"]["tflite"]
        ref = report["metrics"].get("fake_quant_keras", report["metrics"]["float_keras"])
        frame = report["artifacts"]["frame"]
        print("%-10s %-9.3f %-9.3f %-9.3f %-9.3f %10d %10d" % (
            method, tfl["action"]["accuracy"], tfl["identity"]["accuracy"], ref["action"]["accuracy"],
            ref["identity"]["accuracy"], frame["raw_bytes"], frame["gzip_bytes"]))
    flt = reports["fp32"]["metrics"]["float_keras"]
    print("float Keras: action %.3f identity %.3f" % (flt["action"]["accuracy"], flt["identity"]["accuracy"]))
    print("int8 frame vs fp32 frame (raw): %.2fx smaller" % (
        reports["fp32"]["artifacts"]["frame"]["raw_bytes"] / reports["ptq"]["artifacts"]["frame"]["raw_bytes"]))
    total = lambda r: sum(a["gzip_bytes"] for a in (r["artifacts"]["frame"], r["artifacts"]["head"]))  # noqa
    print("prune-qat gzip (frame+head) / plain int8 (ptq): %.2f" % (total(reports["prune-qat"]) / total(reports["ptq"])))
    print("prune-qat achieved sparsity: %.3f" % reports["prune-qat"]["sparsity_overall"])


if __name__ == "__main__":
    main()
