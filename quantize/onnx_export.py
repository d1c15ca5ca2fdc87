"""``edgekit export --model DIR``: the frame model of a model directory as ONNX, for ONNX Runtime
and TensorRT (the manifest's ``onnx``, ``onnx_fp32`` and ``onnx_trt_int8`` variants).

Why from frame.tflite, with tf2onnx's TFLite front end (``tf2onnx.convert.from_tflite``), and not
from the Keras graph: the int8 model's scales exist only in the TFLite file. PTQ calibrates them
inside the TFLite converter, so a PTQ run's Keras graph has no quantization at all, and a QAT
graph's fake-quant ranges are re-derived by the converter (BN folding, the bias repair of
``quantize.quantization.bias_scale``). tf2onnx reads every int8 tensor of frame.tflite and writes a
``QuantizeLinear``/``DequantizeLinear`` pair with its scale and zero point, so the ONNX graph runs
the very model that was calibrated and checked, for every method, with no training run needed
(only the model directory, which is also what a camera has). Measured with tf2onnx 1.17.0,
TF 2.21, opset 17: the EfficientNet-B3 frame model converts in ~2 min on 2 busy cores (614
DequantizeLinear, 366 QuantizeLinear, 124 Conv), uint8 pixels in and int8 features out like the
TFLite file. ONNX Runtime on it differs from LiteRT/XNNPACK by at most 11 int8 steps on
synthetic frames, where LiteRT's own reference kernels differ from XNNPACK by 12; on the tiny test
model's video frames by 0 (tests/test_edge_onnxruntime.py).

Three files come out of the one conversion (:mod:`quantize.onnx_graphs` says how each is made):
``onnx`` (frame.onnx, for ONNX Runtime: tf2onnx's QDQ graph, the TFLite I/O), ``onnx_fp32``
(frame_fp32.onnx: the int8 model's own weights at float activations, float32 I/O, what a GPU runs
at fp16/fp32; not a re-export of the float training graph, which a model directory does not
hold) and ``onnx_trt_int8`` (frame_trt_int8.onnx: the QDQ graph with TFLite's asymmetric
activation ranges as the symmetric ranges that cover them, which is all TensorRT's explicit
quantization takes). No fp16 ONNX file is written: TensorRT and ONNX Runtime's GPU providers
take fp32 ONNX and choose fp16 kernels themselves.

The head is not exported: tf2onnx converts head.tflite without an error, but ONNX Runtime's
outputs differ from LiteRT's by up to 0.35 in the action probabilities (identity 0.24, embedding
0.016) on the tiny model's head with random int8 features, so it is not the same model; the head
is small and stays on LiteRT's CPU kernels on every backend.

Every file is written atomically (temp file + rename) and the manifest last
(:meth:`edge.manifest.Manifest.save`): no manifest ever names a half-written file.
"""

import os

import click

from edge.errors import EdgekitError
from edge.manifest import Manifest, atomic_write_bytes
from edge.onnx_model import describe_onnx
from quantize.onnx_graphs import dequantized, rename_io, symmetric_qdq, with_io_metadata

DEFAULT_OPSET = 17  # TensorRT 8.6+ (JetPack 6 ships 8.6/10.x) parses 17; ORT runs 7..23
FILES = {"onnx": "frame.onnx", "onnx_fp32": "frame_fp32.onnx",
         "onnx_trt_int8": "frame_trt_int8.onnx"}
PRECISIONS = {"int8": "onnx", "fp32": "onnx_fp32", "trt_int8": "onnx_trt_int8"}
INTEGER_METHODS = ("ptq", "qat", "prune-qat")
REWRITES = {"int8": with_io_metadata, "fp32": dequantized, "trt_int8": symmetric_qdq}


def _tf2onnx():
    from quantize.tf_compat import tf  # noqa: F401 - TensorFlow first, quietly, Keras 2
    try:
        import tf2onnx
    except ImportError:
        raise EdgekitError("edgekit export needs tf2onnx and onnx; install them with: "
                           "pip install 'edgekit[host,export]'")
    import logging
    logging.getLogger("tf2onnx").setLevel(logging.ERROR)
    return tf2onnx


def convert_tflite(path, opset=DEFAULT_OPSET):
    """The QDQ ModelProto tf2onnx makes from the TFLite file ``path``."""
    import warnings

    from quantize.tf_compat import _native_stderr_silenced

    tf2onnx = _tf2onnx()
    try:
        # tf2onnx reads the file with tf.lite.Interpreter: its deprecation warning and XNNPACK's
        # native INFO line are not the user's concern
        with warnings.catch_warnings(), _native_stderr_silenced():
            warnings.simplefilter("ignore")
            model, _ = tf2onnx.convert.from_tflite(os.fspath(path), opset=opset)
    except Exception as exc:  # tf2onnx raises bare Exceptions for unsupported ops
        raise EdgekitError("tf2onnx cannot convert %s: %s" % (path, str(exc).splitlines()[0]))
    return model


def _spec_key(spec, with_dtype=True):
    scale = None if spec.scale is None else round(float(spec.scale), 9)
    return (spec.name, tuple(spec.shape), spec.dtype if with_dtype else None,
            scale if with_dtype else None, spec.zero_point if with_dtype else None)


def check_against(onnx_file, tflite_file, same_types):
    """EdgekitError unless the ONNX ModelFile's I/O are the TFLite one's (names, shapes and, for
    the int8 variant, dtypes and scales)."""
    for kind in ("inputs", "outputs"):
        got = [_spec_key(s, same_types) for s in getattr(onnx_file, kind)]
        want = [_spec_key(s, same_types) for s in getattr(tflite_file, kind)]
        if got != want:
            raise EdgekitError("the ONNX export %s does not match %s: its %s are %s, the TFLite "
                               "model's %s; report this with the tf2onnx version"
                               % (onnx_file.file, tflite_file.file, kind, got, want))


def export_model_dir(model_dir, opset=DEFAULT_OPSET, precisions=None):
    """Write the ONNX frame models of ``model_dir`` and record them in its manifest.

    ``precisions``: of PRECISIONS; default all three for an integer model (ptq, qat,
    prune-qat), fp32 alone for a float one (fp32, fp16, dynamic: it has no int8 scales to carry).
    Returns {variant: ModelFile}. The TFLite frame model is verified against the manifest first.
    """
    import onnx

    model_dir = os.fspath(model_dir)
    manifest = Manifest.load(model_dir)
    integer = manifest.method in INTEGER_METHODS
    if not precisions:
        precisions = tuple(PRECISIONS) if integer else ("fp32",)
    if not integer and set(precisions) - {"fp32"}:
        raise EdgekitError("model %s was quantized with --method %s (float activations): it has "
                           "no int8 scales for --precision %s; use --precision fp32, or export "
                           "a ptq/qat model directory" % (model_dir, manifest.method, ", ".join(
                               sorted(set(precisions) - {"fp32"}))))
    manifest.verify(model_dir, roles=["frame"])
    tflite_file = manifest.model_file("frame")
    model = convert_tflite(os.path.join(model_dir, tflite_file.file), opset)
    inputs = [v.name for v in model.graph.input]
    outputs = [v.name for v in model.graph.output]
    if len(inputs) != len(tflite_file.inputs) or len(outputs) != len(tflite_file.outputs):
        raise EdgekitError("tf2onnx made %d inputs/%d outputs from %s, which has %d/%d"
                           % (len(inputs), len(outputs), tflite_file.file,
                              len(tflite_file.inputs), len(tflite_file.outputs)))
    rename_io(model, dict(zip(inputs + outputs, [s.name for s in tflite_file.inputs] +
                              [s.name for s in tflite_file.outputs])))
    built = {}
    for precision in precisions:
        variant = PRECISIONS[precision]
        graph = REWRITES[precision](model)
        try:
            onnx.checker.check_model(graph, full_check=True)
        except onnx.checker.ValidationError as exc:
            raise EdgekitError("the %s ONNX model fails onnx.checker: %s"
                               % (variant, str(exc).splitlines()[0]))
        path = os.path.join(model_dir, FILES[variant])
        atomic_write_bytes(path, graph.SerializeToString())
        built[variant] = describe_onnx(path)
        check_against(built[variant], tflite_file, same_types=precision == "int8")
    for variant, model_file in built.items():
        manifest.variants[variant] = {"frame": model_file}
    import tf2onnx
    manifest.tool_versions.update({"tf2onnx": tf2onnx.__version__, "onnx": onnx.__version__})
    manifest.save(model_dir)
    return built


@click.command("export")
@click.option("--model", "model_dir", required=True, type=click.Path(),
              help="Model directory from 'edgekit quantize' (its frame.tflite is converted).")
@click.option("--precision", "precisions", multiple=True, type=click.Choice(sorted(PRECISIONS)),
              help="int8: QDQ graph with frame.tflite's scales (variant onnx, ONNX Runtime); "
                   "fp32: the same weights at float activations (onnx_fp32); trt_int8: "
                   "symmetric QDQ for TensorRT (onnx_trt_int8). [all three; a float model: "
                   "fp32]")
@click.option("--opset", type=int, default=DEFAULT_OPSET, show_default=True,
              help="ONNX opset (TensorRT 8.6+ reads 17).")
def export_command(model_dir, precisions, opset):
    """Write the frame model as ONNX (int8 QDQ, fp32, TensorRT int8) beside its manifest."""
    built = export_model_dir(model_dir, opset=opset, precisions=tuple(precisions))
    for variant, model_file in sorted(built.items()):
        click.echo("%s: %s (%d bytes; in %s, out %s)" % (
            variant, model_file.file, model_file.size_bytes,
            " ".join("%s %s" % (s.dtype, s.shape) for s in model_file.inputs),
            " ".join("%s %s" % (s.dtype, s.shape) for s in model_file.outputs)))
    click.echo("wrote %s" % os.path.join(model_dir, "manifest.json"))
