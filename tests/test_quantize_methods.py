"""Every method end to end on the tiny run: convert, load with the device interpreter, run,
compare to Keras; manifest contents; frame+head vs clip parity; prune-qat sparsity."""

import json
import os

import numpy as np
import pytest

from edge.interpreter import make_interpreter
from edge.manifest import Manifest
from tests.fixtures.quantize import quantized  # noqa: F401  (fixture)

METHODS = ["fp32", "fp16", "dynamic", "ptq", "qat", "prune-qat"]
INTEGER = ("ptq", "qat", "prune-qat")


@pytest.mark.slow
@pytest.mark.parametrize("method", METHODS)
def test_method_end_to_end(quantized, method):  # noqa: F811
    out, report = quantized(method)
    assert sorted(f for f in os.listdir(out)) == sorted(
        ["frame.tflite", "head.tflite", "clip.tflite", "manifest.json", "report.json", "report.txt"])
    manifest = Manifest.load(out)
    manifest.verify(out)
    assert manifest.method == method
    assert (manifest.sparsity == 0.5) == (method == "prune-qat")
    assert manifest.clip_length == 8 and manifest.input.height == 32
    assert [t.name for t in manifest.tasks] == ["action", "identity", "identity_embedding"]
    assert manifest.task("action").labels == ["breaststroke", "drowning", "freestyle", "safe"]
    frame, head = manifest.models["frame"], manifest.models["head"]
    assert frame.inputs[0].name == "frame" and frame.inputs[0].shape == [1, 32, 32, 3]
    assert frame.outputs[0].name == "features" and frame.outputs[0].shape == [1] + manifest.feature_shape
    assert head.inputs[0].shape == [1, 8] + manifest.feature_shape
    assert {o.name for o in head.outputs} == {"action", "identity", "identity_embedding"}
    if method in INTEGER:
        assert frame.inputs[0].dtype == "uint8" and frame.outputs[0].dtype == "int8"
        assert frame.inputs[0].scale == pytest.approx(1.0) and frame.inputs[0].zero_point == 0
        assert head.inputs[0].dtype == "int8" and head.inputs[0].scale > 0
        assert "UNIDIRECTIONAL_SEQUENCE_LSTM" in head.ops
        assert report["layer_errors"] and all("snr_db" in r for r in report["layer_errors"])
    else:
        assert frame.inputs[0].dtype == "float32"
    for role in ("frame", "head", "clip"):  # the device factory loads and allocates them
        make_interpreter(os.path.join(out, manifest.models[role].file), device="cpu", threads=1)
    metrics = report["metrics"]
    keras_ref = metrics.get("fake_quant_keras", metrics["float_keras"])
    for task in ("action", "identity"):
        # TFLite scored with the same eval function; the tiny run is near chance, so compare the
        # agreement of the metric (a broken conversion gives a different confusion matrix).
        assert abs(metrics["tflite"][task]["accuracy"] - keras_ref[task]["accuracy"]) <= 0.25
    with open(os.path.join(out, "report.json")) as handle:
        assert json.load(handle)["method"] == method


@pytest.mark.slow
@pytest.mark.parametrize("method", ["fp32", "ptq", "qat"])
def test_frame_head_matches_clip(quantized, method, tiny_swim_run):  # noqa: F811
    """The device's split path (frame per image, head per window) equals the one-file model."""
    from quantize.datasets import load_task_data
    from quantize.quantization import runner
    from quantize.runs import read_run

    out, _ = quantized(method)
    info = read_run(str(tiny_swim_run))
    data = load_task_data(info.config, info.data_dir).select(info.splits["test"][:4])
    split = runner.run_frame_head(os.path.join(out, "frame.tflite"), os.path.join(out, "head.tflite"), data.x)
    whole = runner.run_clip(os.path.join(out, "clip.tflite"), data.x)
    tolerance = 1e-4 if method == "fp32" else 0.15  # int8: frame and head requantize in between
    for name in ("action", "identity"):
        assert np.max(np.abs(split[name] - whole[name])) <= tolerance, name
    assert np.mean(np.sum(split["identity_embedding"] * whole["identity_embedding"], axis=1)) > 0.9


@pytest.mark.slow
def test_prune_qat_reaches_target_sparsity_per_layer(quantized):  # noqa: F811
    _, report = quantized("prune-qat")
    per_layer = report["sparsity_per_layer"]
    assert per_layer and "tiny_stem_conv" in per_layer
    assert report["sparsity_overall"] >= 0.4  # small SE convs round their zero count down
    assert all(0.3 <= s <= 0.7 for s in per_layer.values()), per_layer


@pytest.mark.slow
def test_qat_report_says_how_each_part_was_quantized(quantized):  # noqa: F811
    out, report = quantized("qat")
    assert "calibrated int8" in report["head_quantization"]
    coverage = report["qat_coverage"]
    assert coverage["tiny_block1_se_excite"] == "custom:OutputQuantizeConfig"
    assert coverage["fold_time"] == "custom:NoOpQuantizeConfig"
    assert coverage["temporal_lstm"].startswith("calibrated")
    assert coverage["tiny_stem_conv"] == "registry"
    tpu = report["edgetpu"]
    assert tpu["first_unsupported"] is None and tpu["ops_on_cpu"] == 0
    assert "edgetpu_compiler" in tpu["compile"]
    assert "fake-quant Keras" in open(os.path.join(out, "report.txt")).read()
