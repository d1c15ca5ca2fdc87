"""Float vs PTQ vs QAT vs prune-QAT on one trained run: accuracy per task and file sizes.

    python benchmarks/bench_quantize.py --run RUN [--epochs 2] [--calibration 200] [--b3]
    python benchmarks/bench_quantize.py --only-b3

Without --run, synthesizes a small swimmer set and trains a test_tiny run first. Prints the
figures the issue's targets are stated in, on the run's held-out test split:

* action / identity accuracy and identity rank-1 of float Keras, fake-quant Keras (QAT
  methods) and the TFLite frame+head files (what the camera runs), per method;
* raw and gzip sizes of frame/head, the int8 vs fp32 frame size ratio, prune-qat gzip vs
  plain int8 (ptq) gzip;
* with --b3 / --only-b3: raw and gzip sizes of a random-weights EfficientNet-B3 frame model
  (the seed's backbone, 100x100) as fp32, ptq and qat int8 (QAT graph with calibrated ranges,
  not fine-tuned), their ratios to fp32 and their per-channel quantization entries. Raw sizes
  do not depend on the weights' values; gzip sizes do a little. Measured (--only-b3):

      fp32  raw 31156472 B (1.00x)  gzip 28809307 B (1.00x)  per-channel entries 0
      ptq   raw  9198416 B (3.39x)  gzip  8068989 B (3.57x)  per-channel entries 109600
      qat   raw  8788840 B (3.55x)  gzip  7822592 B (3.68x)  per-channel entries 74240

  The qat file is smaller because edgekit quantizes the squeeze-excitation convs per-tensor
  (quantize.quantization.configs.SqueezeExciteConvQuantizeConfig): 35,360 fewer per-channel
  entries (weight and bias scales of the SE convs' 17,680 output channels), 24 B each. PTQ
  leaves every conv per-channel (the converter's choice).

  On the quickstart's run (mbconv_micro, 100x100, T=15, 48 test clips; a copy of
  QUICKSTART/run, ``--run COPY --epochs 4 --clip``; cells action / identity / rank-1):

      method     float Keras          fake-quant Keras     TFLite frame+head    TFLite clip
      ptq        0.958 1.000 1.000    -                    0.979 1.000 1.000    0.958 1.000 1.000
      qat        0.958 1.000 1.000    1.000 1.000 1.000    1.000 1.000 1.000    0.979 1.000 1.000
      prune-qat  0.958 1.000 1.000    0.938 1.000 1.000    0.958 1.000 1.000    0.938 1.000 1.000

  prune-qat gzip (frame+head) 0.64x of ptq, sparsity 0.500 on every pruned layer. QAT's and
  prune-qat's clip.tflite each had 60 biases re-quantized (quantize.quantization.bias_scale);
  before that fix QAT's clip.tflite scored identity 0.917 on the quickstart. Before standalone
  BNs became depthwise convs (quantize.quantization.batchnorm), the int8 head flipped one
  borderline clip on an earlier run (QAT TFLite action 0.938 vs fake-quant 0.958; action
  probabilities 0.50/0.47 where the float head gives 0.41/0.55); with the rewrite that clip is
  right again and the head's largest action probability error (against the float head on the
  same int8 features) fell from 0.145 to 0.067; on the quickstart run from 0.226 to 0.084.

  PTQ does not collapse on any network trainable here (mbconv_micro has swish and SE, and PTQ
  matches float). The collapse is reported for ImageNet-trained EfficientNet weights, which
  this offline machine cannot download; with internet,
  ``--backbone efficientnet_b3 --weights imagenet --size 100`` trains on them and prints the
  same table.
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


def per_channel_entries(blob):
    """How many per-channel (scale, zero point) entries a TFLite file holds: the sum of the
    scale counts of every tensor quantized with more than one scale. Each costs a float32 scale
    and an int64 zero point in the file."""
    from ai_edge_litert.interpreter import Interpreter

    details = Interpreter(model_content=bytes(blob)).get_tensor_details()
    counts = (len(t["quantization_parameters"]["scales"]) for t in details)
    return sum(c for c in counts if c > 1)


def _qat_frame(frame, samples):
    """The QAT graph of a float frame model as ``edgekit quantize --method qat`` builds it
    (edgekit's configs, tfmot's 8-bit scheme), with its quantizer ranges calibrated on
    ``samples`` instead of fine-tuned: enough for raw sizes, which do not depend on the values."""
    from quantize.quantization import qat

    with qat.quantize_scope():
        qat_model = qat.qkeras.quantize_apply(qat.annotate(frame))
    qat.calibrate_ranges(qat_model, np.stack(samples))
    return qat_model


def efficientnet_b3_frames(size=100, calibration=8):
    """{method: TFLite bytes} of a random-weights EfficientNet-B3 frame model for fp32, ptq and
    qat, converted as the pipeline converts the frame (uint8 pixels in, int8 features out)."""
    from quantize.backbones import build_backbone
    from quantize.quantization.convert import convert
    from quantize.tf_compat import keras

    inputs = keras.Input((size, size, 3))
    frame = keras.Model(inputs, build_backbone("efficientnet_b3", inputs, None))
    rng = np.random.default_rng(0)
    samples = [rng.uniform(0, 255, (size, size, 3)).astype(np.float32) for _ in range(calibration)]
    shape = (1, size, size, 3)
    return {
        "fp32": convert(frame, shape, "frame", "fp32", output_name="features"),
        "ptq": convert(frame, shape, "frame", "ptq", samples, "uint8", "int8", "features"),
        "qat": convert(_qat_frame(frame, samples), shape, "frame", "qat", samples, "uint8",
                       "int8", "features"),
    }


def print_b3_sizes(size=100):
    import gzip

    blobs = efficientnet_b3_frames(size)
    raw = {m: len(b) for m, b in blobs.items()}
    gz = {m: len(gzip.compress(bytes(b), 9)) for m, b in blobs.items()}
    print("EfficientNet-B3 frame (random weights, %dx%d): size, ratio fp32/size, per-channel "
          "quantization entries" % (size, size))
    for method in blobs:
        print("  %-5s raw %9d B (%.2fx)  gzip %9d B (%.2fx)  per-channel entries %d" % (
            method, raw[method], raw["fp32"] / raw[method], gz[method], gz["fp32"] / gz[method],
            per_channel_entries(blobs[method])))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--run", default=None)
    parser.add_argument("--out", default=None, help="Folder for the model directories [temp].")
    parser.add_argument("--epochs", type=int, default=2, help="QAT / pruning fine-tuning epochs.")
    parser.add_argument("--train-epochs", type=int, default=15)
    parser.add_argument("--backbone", default="test_tiny")
    parser.add_argument("--weights", default=None,
                        help="Backbone weights for the run trained here: 'imagenet' (downloads; "
                             "needs internet) or a Keras .h5 file. With --backbone "
                             "efficientnet_b3 this is how to see PTQ against QAT on a pretrained "
                             "EfficientNet, which this offline project cannot (see the docstring).")
    parser.add_argument("--clip", action="store_true",
                        help="Also convert and score clip.tflite (the one-file model).")
    parser.add_argument("--size", type=int, default=48)
    parser.add_argument("--clip-length", type=int, default=8)
    parser.add_argument("--calibration", type=int, default=200)
    parser.add_argument("--sparsity", type=float, default=0.5)
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--b3", action="store_true", help="Also the EfficientNet-B3 frame size ratio.")
    parser.add_argument("--only-b3", action="store_true",
                        help="Only the EfficientNet-B3 frame sizes (no run trained or quantized).")
    args = parser.parse_args()
    if args.only_b3:
        print_b3_sizes()
        return

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
              batch_size=8, seed=0, verbose=0, weights=args.weights)
    reports = {}
    for method in args.methods.split(","):
        reports[method] = quantize_run(run, os.path.join(work, method), method,
                                       sparsity=args.sparsity if method == "prune-qat" else None,
                                       epochs=args.epochs, calibration=args.calibration, verbose=0,
                                       clip_model=args.clip and method != "fp32",
                                       layer_errors=False)
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
    for method, report in reports.items():
        if "tflite_clip" in report["metrics"]:
            print("%-10s TFLite clip.tflite: %s (biases re-quantized: %d)" % (
                method, _cell(report["metrics"]["tflite_clip"]),
                report["artifacts"]["clip"].get("biases_repaired", 0)))
    kept = ["%s after epoch %s" % (method, report["qat_kept_epoch"])
            for method, report in reports.items() if "qat_kept_epoch" in report]
    if kept:
        print("QAT weights kept (lowest validation loss; epoch 0 = the calibrated start): "
              + ", ".join(kept))
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
        print_b3_sizes()


if __name__ == "__main__":
    import sys

    from edge.errors import EdgekitError

    try:
        main()
    except EdgekitError as exc:  # bad input or offline weights: one line, no traceback
        sys.exit("error: %s" % exc)
