"""Every method end to end on the tiny run: convert, load with the device interpreter, run,
compare to Keras; manifest contents; frame+head vs clip parity; prune-qat sparsity; QAT range
calibration; resuming an interrupted fine-tuning.

One session-scoped quantized directory per method (tests/fixtures/quantize.py) is shared by all
tests here. ``clip.tflite`` and the per-layer error analysis are made only for ptq, where the
parity and layer-error tests look at them. The float methods (fp32, fp16, dynamic) share every
step with ptq but the converter flags, so they are checked on the frame model only (convert,
load with the device factory, run, compare to Keras). The QAT directory is made by an
interrupted-then-resumed fine-tuning (see tests/fixtures/quantize.py).
"""

import json
import os

import numpy as np
import pytest

from edge.bench import placement
from edge.interpreter import make_interpreter
from edge.manifest import Manifest
from edge.session import ModelSession
from quantize.quantization import hybrid

INTEGER = ("ptq", "qat", "prune-qat")
# Options per method: which run of the shared fixture each test uses.
OPTIONS = {
    "ptq": {"clip_model": True, "layer_errors": True},
    "qat": {"target": "coral", "interrupted": True, "clip_model": True},
    "prune-qat": {},
}


def _run(quantized, method):
    return quantized(method, **OPTIONS[method])


def _frame_head(model_dir, clips):
    """{output: (N, ...) array} of clips through the device runtime's frame+head path, the one
    report.json and `edgekit bench` score (edge.bench.evalset.clip_outputs)."""
    from edge.bench.evalset import clip_outputs
    from edge.runner import StreamingRunner

    outputs = clip_outputs(StreamingRunner(model_dir, threads=1), clips)
    return {name: np.asarray(values, dtype=np.float32) for name, values in outputs.items()}


def _test_clips(run, count=6):
    from quantize.datasets import load_task_data
    from quantize.runs import read_run

    info = read_run(str(run))
    return info, load_task_data(info.config, info.data_dir).select(info.splits["test"][:count])


@pytest.mark.slow
@pytest.mark.parametrize("method", list(OPTIONS))
def test_method_end_to_end(quantized, method, tiny_swim_run):
    out, report = _run(quantized, method)
    expected = ["frame.tflite", "step.tflite", "head.tflite", "manifest.json", "report.json",
                "report.txt"]
    if OPTIONS[method].get("clip_model"):
        expected.append("clip.tflite")
    assert sorted(os.listdir(out)) == sorted(expected)
    manifest = Manifest.load(out)
    manifest.verify(out)
    assert manifest.method == method
    assert (manifest.sparsity == 0.5) == (method == "prune-qat")
    assert manifest.clip_length == 8 and manifest.input.height == 32
    assert [t.name for t in manifest.tasks] == ["action", "identity", "identity_embedding"]
    assert manifest.task("action").labels == ["breaststroke", "drowning", "freestyle", "safe"]
    frame, step, head = (manifest.models[role] for role in ("frame", "step", "head"))
    assert frame.inputs[0].name == "frame" and frame.inputs[0].shape == [1, 32, 32, 3]
    assert frame.output("features").shape == [1] + manifest.feature_shape
    gates = frame.output("lstm_inputs").shape[1]
    units = gates // 4
    assert head.input("spatial_mean").shape == [1] + manifest.feature_shape
    # the step model advances all T = 8 windows' LSTM states on one frame's projections
    assert step.input("lstm_inputs").shape == [1, gates]
    for name in ("hidden", "cell"):
        assert step.input(name).shape == [1, 8, units]
        assert step.output("next_" + name).shape == [1, 8, units]
    assert head.input("hidden_states").shape == [1, 8, units]
    assert [(w.input, w.source, w.reduce) for w in manifest.window] == [
        ("spatial_mean", "features", "mean"), ("hidden_states", "lstm_inputs", "recurrent")]
    assert {o.name for o in head.outputs} == {"action", "identity", "identity_embedding"}
    if method in INTEGER:
        assert frame.inputs[0].dtype == "uint8"
        assert {o.dtype for o in frame.outputs} == {"int8"}
        assert frame.inputs[0].scale == pytest.approx(1.0) and frame.inputs[0].zero_point == 0
        # the head: int8 weights, float activations (quantize.quantization.hybrid), every op
        # on XNNPACK in one partition (LiteRT's own placement, as the runner loads it)
        assert {i.dtype for i in head.inputs} == {"float32"}
        assert "L2_NORMALIZATION" not in head.ops and "DEQUANTIZE" not in head.ops
        hybrid.check(os.path.join(out, head.file))
        where = placement.placement(placement.op_details(
            ModelSession(out, threads=1).head_interpreter))
        assert (where["cpu"], where["partitions"]) == (0, 1), where
        assert {i.dtype for i in step.inputs} == {"int8"}
        # The LSTM recurrence is one step of plain ops XNNPACK runs (quantize.streaming), its
        # state kept by the device, instead of the fused UNIDIRECTIONAL_SEQUENCE_LSTM; the
        # head keeps none of it.
        for model in (step, head):
            assert "UNIDIRECTIONAL_SEQUENCE_LSTM" not in model.ops and "WHILE" not in model.ops
        assert "SPLIT" not in step.ops  # gates sliced out after the activations, no SPLIT
        assert {"FULLY_CONNECTED", "LOGISTIC", "TANH", "MUL"} <= set(step.ops)
    else:
        assert frame.inputs[0].dtype == "float32"
    for role in manifest.models:  # the device factory loads and allocates them
        make_interpreter(os.path.join(out, manifest.models[role].file), device="cpu", threads=1)
    # The TFLite frame+head outputs against the Keras model they were converted from (the
    # fake-quant one for QAT), clip by clip: the tiny run is near chance, so accuracies alone
    # would agree by luck; the class probabilities must agree.
    from edge.bench.evalset import score_model_dir
    from quantize.runs import load_run_model

    _, data = _test_clips(tiny_swim_run)
    tflite = _frame_head(out, data.x)
    metrics = report["metrics"]
    # report.json's TFLite figures are the bench's scoring path, run again here on all test clips
    _, everything = _test_clips(tiny_swim_run, None)
    again = score_model_dir(out, everything.x, everything.targets)
    for task in ("action", "identity"):
        assert again[task]["confusion"] == metrics["tflite"][task]["confusion"]
    assert again["identity"]["rank1"] == pytest.approx(metrics["tflite"]["identity"]["rank1"])
    reference = metrics.get("fake_quant_keras", metrics["float_keras"])
    if method == "ptq":
        model, _ = load_run_model(str(tiny_swim_run))
        keras_out = model.clip(data.x.astype(np.float32), training=False)
        for name in ("action", "identity"):
            assert np.max(np.abs(tflite[name] - np.asarray(keras_out[name]))) <= 0.1, name
    for task in ("action", "identity"):
        assert abs(metrics["tflite"][task]["accuracy"] - reference[task]["accuracy"]) <= 0.25
    with open(os.path.join(out, "report.json")) as handle:
        assert json.load(handle)["method"] == method


@pytest.fixture(scope="module")
def tiny_model(tiny_swim_run):
    from quantize.runs import load_run_model

    return load_run_model(str(tiny_swim_run))[0]


@pytest.mark.parametrize("method, tolerance", [("fp32", 1e-4), ("fp16", 0.01), ("dynamic", 0.1)])
def test_float_methods_on_the_frame_model(method, tolerance, tiny_model, tiny_swim_run, tmp_path):
    """fp32, fp16 and dynamic-range: the frame model converted, loaded with the device factory,
    run and compared to Keras."""
    from quantize.quantization import runner
    from quantize.quantization.convert import convert

    model = tiny_model
    _, data = _test_clips(tiny_swim_run, 2)
    path = tmp_path / "frame.tflite"
    path.write_bytes(convert(model.frame, (1, 32, 32, 3), "frame", method, output_name="features"))
    make_interpreter(str(path), device="cpu", threads=1)
    frame = runner.Model(str(path))
    assert frame.input_detail["dtype"] == np.float32
    frames = data.x.reshape((-1, 32, 32, 3))[:6].astype(np.float32)
    expected = np.asarray(model.frame(frames, training=False))
    got = np.stack([frame(f[None])["features"][0] for f in frames])
    relative = np.sqrt(np.mean((got - expected) ** 2) / np.mean(expected ** 2))
    assert relative <= tolerance


@pytest.mark.slow
@pytest.mark.parametrize("method", ["ptq", "qat"])
def test_frame_head_matches_clip(quantized, tiny_swim_run, method):
    """The device's split path (frame per image, head per window) equals the one-file model.

    For qat, clip.tflite is the QAT frame model and the calibrated head converted as one graph,
    where the converter recorded some biases at another scale than their ops read them
    (quantize.quantization.bias_scale): the report says how many were re-quantized.
    """
    from quantize.quantization import bias_scale, runner

    out, report = _run(quantized, method)
    assert "biases_repaired" not in report["artifacts"]["head"]  # float biases: nothing to repair
    for role in ("frame", "head", "clip"):
        if role != "head":
            assert report["artifacts"][role]["biases_repaired"] >= 0
        with open(os.path.join(out, role + ".tflite"), "rb") as handle:
            assert bias_scale.mismatched(handle.read()) == []
    _, data = _test_clips(tiny_swim_run, 4)
    split = _frame_head(out, data.x)
    whole = runner.run_clip(os.path.join(out, "clip.tflite"), data.x)
    tolerance = 0.15  # int8: frame and head requantize in between, calibrated apart
    for name in ("action", "identity"):
        assert np.max(np.abs(split[name] - whole[name])) <= tolerance, name
    assert np.mean(np.sum(split["identity_embedding"] * whole["identity_embedding"], axis=1)) > 0.9
    assert "tflite_clip" in report["metrics"]


@pytest.mark.slow
def test_per_layer_error_is_reported(quantized):
    _, report = _run(quantized, "ptq")
    rows = report["layer_errors"]
    assert rows and all({"op", "tensor", "snr_db", "mse"} <= set(r) for r in rows)
    assert any(r["op"] == "CONV_2D" for r in rows)
    assert report["layer_errors_worst"][0]["snr_db"] == min(r["snr_db"] for r in rows)


@pytest.mark.slow
def test_prune_qat_reaches_target_sparsity_per_layer(quantized):
    _, report = _run(quantized, "prune-qat")
    per_layer = report["sparsity_per_layer"]
    assert per_layer and "tiny_stem_conv" in per_layer
    # The schedule ends on the last fine-tuning step, so every pruned kernel is at the target
    # (up to rounding of its zero count: the smallest SE kernel has 32 weights).
    assert all(s >= 0.5 - 1.0 / 32 for s in per_layer.values()), per_layer
    assert report["sparsity_overall"] >= 0.49


@pytest.mark.slow
def test_qat_report_says_how_each_part_was_quantized(quantized):
    out, report = _run(quantized, "qat")
    assert "int8 weights, float activations" in report["head_quantization"]
    assert report["calibrated_ranges"] > 10
    coverage = report["qat_coverage"]
    assert coverage["tiny_block1_se_excite"] == "custom:OutputQuantizeConfig"
    assert coverage["fold_time"] == "custom:NoOpQuantizeConfig"
    assert coverage["temporal_lstm"].startswith("calibrated")
    assert coverage["tiny_stem_conv"] == "registry"
    tpu = report["edgetpu"]
    assert tpu["first_unsupported"] is None and tpu["ops_on_cpu"] == 0
    assert "edgetpu_compiler" in tpu["compile"]
    assert "fake-quant Keras" in open(os.path.join(out, "report.txt")).read()


def test_qat_ranges_start_from_calibration_not_tfmot_default():
    """tfmot starts activation ranges at [-6, 6]; calibrate_ranges sets them to what the float
    activations span, so a tensor of +-0.01 is not fake-quantized to zeros."""
    from quantize.quantization import qat
    from quantize.tf_compat import keras

    inputs = keras.Input((4,), name="x")
    hidden = keras.layers.Dense(8, activation="relu", name="hidden")(inputs)
    outputs = keras.layers.Dense(2, name="out")(hidden)
    model = keras.Model(inputs, outputs)
    rng = np.random.default_rng(0)
    model.get_layer("hidden").set_weights([rng.normal(size=(4, 8)).astype(np.float32) * 0.01,
                                           np.zeros(8, np.float32)])
    with qat.quantize_scope():
        wrapped = qat.qkeras.quantize_model(model)
    x = rng.normal(size=(16, 4)).astype(np.float32)
    before = np.asarray(wrapped(x, training=False))
    assert qat.calibrate_ranges(wrapped, x, batch_size=8) >= 2
    hidden_q = wrapped.get_layer("quant_hidden")
    ranges = {w.name.split("/")[-1]: float(w.numpy()) for w in hidden_q.weights
              if "post_activation" in w.name}
    activations = np.maximum(x @ model.get_layer("hidden").get_weights()[0], 0)
    assert ranges["post_activation_min:0"] == 0.0
    # (seen with the weights fake-quantized as they will be: within a weight step of float)
    assert ranges["post_activation_max:0"] == pytest.approx(activations.max(), rel=1e-2)
    kernel_range = [float(w.numpy()) for w in hidden_q.weights if "kernel_m" in w.name]
    kernel = model.get_layer("hidden").get_weights()[0]
    assert max(abs(v) for v in kernel_range) == pytest.approx(np.abs(kernel).max(), rel=1e-4)
    after = np.asarray(wrapped(x, training=False))
    reference = np.asarray(model(x))
    assert np.abs(after - reference).max() < np.abs(before - reference).max()


def test_calibration_clips_cover_every_stratum():
    from quantize.quantization.pipeline import calibration_clips

    strata = np.repeat(np.arange(16), 5)
    data = type("D", (), {"strata": strata, "__len__": lambda self: len(strata)})()
    chosen = calibration_clips(data, 16)
    assert len(set(chosen.tolist())) == 16 and set(strata[chosen].tolist()) == set(range(16))
    assert len(calibration_clips(data, 500)) == len(strata)


@pytest.mark.slow
def test_interrupted_qat_fine_tuning_resumes(quantized):
    """Interrupted after epoch 1 of 2: --out was not created, OUT.partial held the checkpoint;
    --resume restored weights and optimizer and ran only epoch 2, then cleaned up."""
    out, report = _run(quantized, "qat")
    seen = report["_interrupted"]
    assert seen["out_exists"] is False
    assert seen["state"]["epochs_done"] == 1 and seen["state"]["phase"] == "qat"
    assert report["qat_resumed_after_epoch"] == 1
    assert len(report["qat_history"]["loss"]) == 1  # only the second epoch ran
    steps = int(np.ceil(report["train_clips"] / 4))
    assert report["qat_optimizer_steps"] == 2 * steps  # the optimizer continued, not restarted
    assert os.path.isfile(os.path.join(out, "head.tflite")) and not os.path.exists(out + ".partial")
