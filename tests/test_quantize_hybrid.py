"""The head with int8 weights and float activations (quantize.quantization.hybrid): the same
function as the float head, every op on XNNPACK in one partition, and a gate that tells it from
an int8 or a float head."""

import numpy as np
import pytest

from edge.bench import placement
from edge.errors import EdgekitError
from quantize import streaming
from quantize.config import swim_config
from quantize.model import build_mtdnn
from quantize.quantization import convert as conv
from quantize.quantization import hybrid
from quantize.tf_compat import keras

T = 4


@pytest.fixture(scope="module")
def float_head():
    """A tiny fused swim head (spatial + temporal, embedding task) with non-trivial weights."""
    keras.utils.set_random_seed(0)
    config = swim_config(backbone="test_tiny", size=(32, 32), clip_length=T, head_size="tiny")
    model = build_mtdnn(config)
    rng = np.random.default_rng(0)
    for layer in model.clip.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.moving_mean.assign(rng.normal(0, 0.1, layer.moving_mean.shape))
    return streaming.head_model(model)


def _inputs(head, seed=1, n=6):
    rng = np.random.default_rng(seed)
    return [rng.normal(0, 1, (n,) + tuple(x.shape[1:])).astype(np.float32) for x in head.inputs]


def _interpreter(blob, directory, kernels="xnnpack"):
    """``blob`` loaded as the runner loads a head (edge.backends, LiteRT's CPU kernels)."""
    from edge.backends import create

    path = directory / ("head-%s-%d.tflite" % (kernels, len(list(directory.iterdir()))))
    path.write_bytes(blob)
    return create("cpu", kernels=kernels).load(str(path), threads=1)


def _run(interpreter, head, inputs):
    """{output: (n, ...)} of a TFLite head over the batch rows of ``inputs``."""
    runner = interpreter.get_signature_runner()
    names = [x.name.split(":")[0] for x in head.inputs]
    rows = []
    for k in range(len(inputs[0])):
        rows.append(runner(**{name: value[k:k + 1] for name, value in zip(names, inputs)}))
    return {key: np.concatenate([r[key] for r in rows]) for key in rows[0]}


def test_prepare_computes_the_same_function(float_head):
    prepared = hybrid.prepare(float_head)
    assert prepared is not float_head
    assert not any(isinstance(layer, keras.layers.UnitNormalization) for layer in prepared.layers)
    inputs = _inputs(float_head)
    want, got = float_head(inputs, training=False), prepared(inputs, training=False)
    for name in want:
        np.testing.assert_allclose(np.asarray(got[name]), np.asarray(want[name]), atol=1e-6)


def test_converted_head_runs_on_xnnpack_in_one_partition(float_head, tmp_path):
    blob = hybrid.convert(float_head, streaming.input_shapes(float_head))
    hybrid.check(blob)
    interpreter = _interpreter(blob, tmp_path)
    where = placement.placement(placement.op_details(interpreter))
    assert (where["cpu"], where["partitions"]) == (0, 1), where
    # no op of the head computes in int8 and none is an L2_NORMALIZATION
    ops = set(where["ops_delegated"])
    assert not ops & {"L2_NORMALIZATION", "QUANTIZE", "DEQUANTIZE"}, ops
    assert {d["dtype"] for d in interpreter.get_input_details()} == {np.float32}


def test_converted_head_is_close_to_the_float_head(float_head, tmp_path):
    """Int8 weights (per channel) and activations quantized on the fly: within 0.02 of the float
    head's probabilities (measured here: ~0.002), on both kernel sets."""
    blob = hybrid.convert(float_head, streaming.input_shapes(float_head))
    inputs = _inputs(float_head)
    want = {k: np.asarray(v) for k, v in float_head(inputs, training=False).items()}
    for kernels in ("xnnpack", "builtin"):
        got = _run(_interpreter(blob, tmp_path, kernels), float_head, inputs)
        for name in ("action", "identity"):
            assert np.max(np.abs(got[name] - want[name])) < 0.02, (kernels, name)
        cosine = np.sum(got["identity_embedding"] * want["identity_embedding"], axis=1)
        assert np.min(cosine) > 0.999, kernels
        np.testing.assert_allclose(np.linalg.norm(got["identity_embedding"], axis=1), 1.0,
                                   atol=1e-4)


def test_float_depthwise_keeps_the_hybrid_kernels_values(tmp_path):
    """The depthwise weights stored in float are the int8 codes times their scales: the model
    computes what the converter's hybrid depthwise computed (built-in kernels, which run both).
    A separable conv over 128 channels: 3x3x128 depthwise weights, enough for the converter to
    quantize them (the tiny head's are below its 1024-value threshold)."""
    keras.utils.set_random_seed(0)
    x = keras.Input((4, 4, 128), name="spatial_mean")
    y = keras.layers.SeparableConv2D(32, 3, padding="same", activation="relu", name="sep")(x)
    y = keras.layers.GlobalAveragePooling2D()(y)
    model = keras.Model(x, {"out": keras.layers.Dense(4, name="out")(y)})
    raw = conv.convert(model, streaming.input_shapes(model), None, hybrid.METHOD)
    fixed = hybrid.float_depthwise(raw)
    assert fixed != raw
    assert hybrid.float_depthwise(fixed) == fixed  # nothing left to change
    inputs = _inputs(model, seed=2)
    want = np.asarray(model(inputs, training=False)["out"])
    before = _run(_interpreter(raw, tmp_path, "builtin"), model, inputs)["out"]
    after = _run(_interpreter(fixed, tmp_path, "builtin"), model, inputs)["out"]
    # the hybrid depthwise kernel also quantizes its input, the float one does not: both are
    # close to the float model, and the fixed one no further from it
    scale = np.max(np.abs(want))
    assert np.max(np.abs(after - before)) < 0.02 * scale
    assert np.max(np.abs(after - want)) <= np.max(np.abs(before - want)) + 1e-6 * scale
    where = placement.placement(placement.op_details(_interpreter(fixed, tmp_path)))
    assert (where["cpu"], where["partitions"]) == (0, 1), where


def test_check_rejects_int8_and_float_heads(float_head):
    shapes = streaming.input_shapes(float_head)
    with pytest.raises(EdgekitError, match="keeps float32 weights"):
        hybrid.check(conv.convert(float_head, shapes, None, "fp32"), "head.tflite")
    samples = [[x[0] for x in _inputs(float_head, seed=s, n=1)] for s in range(4)]
    int8 = conv.convert(float_head, shapes, None, "ptq", samples, "int8", "float32")
    with pytest.raises(EdgekitError, match="moves activations between int8 and float"):
        hybrid.check(int8, "head.tflite")
