"""Standalone BNs as 1x1 depthwise convs before calibration (quantize.quantization.batchnorm)."""

import numpy as np
import pytest

from quantize.config import swim_config
from quantize.model import build_mtdnn
from quantize.tf_compat import keras


@pytest.fixture(scope="module")
def tiny():
    model = build_mtdnn(swim_config(backbone="test_tiny", size=(32, 32), clip_length=4, head_size="tiny"))
    rng = np.random.default_rng(0)
    # Statistics like a trained head's: some channels all but dead (variance ~0, so the BN
    # multiplies them by ~1/sqrt(eps)), shifted means, scales and offsets.
    for layer in model.clip.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            shape = layer.moving_mean.shape
            variance = rng.uniform(1e-4, 2e-3, shape)
            variance[: shape[0] // 2] = 1e-10
            layer.moving_variance.assign(variance)
            layer.moving_mean.assign(rng.normal(0, 0.01, shape))
            layer.gamma.assign(rng.uniform(0.5, 1.5, shape))
            layer.beta.assign(rng.normal(0, 0.1, shape))
    return model


def _features(model, count, seed):
    rng = np.random.default_rng(seed)
    return rng.gamma(1.0, 0.5, (count, 4) + model.feature_shape).astype(np.float32)


def test_only_batchnorms_not_after_a_conv_or_dense_are_standalone(tiny):
    from quantize.quantization.batchnorm import standalone_batchnorms

    every_bn = [layer.name for layer in tiny.clip.layers
                if isinstance(layer, keras.layers.BatchNormalization)]
    assert sorted(standalone_batchnorms(tiny.clip)) == ["action_bn", "identity_bn", "spatial_bn"]
    assert len(every_bn) > 3  # the backbone's BNs follow convs: the converter folds those
    assert sorted(standalone_batchnorms(tiny.head)) == ["action_bn", "identity_bn", "spatial_bn"]


def test_rewrite_computes_the_same_function_and_leaves_the_model_alone(tiny):
    from quantize.quantization.batchnorm import rewrite, standalone_batchnorms

    before = [w.copy() for w in tiny.head.get_weights()]
    features = _features(tiny, 6, 1)
    rewritten = rewrite(tiny.head)
    assert standalone_batchnorms(rewritten) == []
    assert isinstance(rewritten.get_layer("spatial_bn"), keras.layers.DepthwiseConv2D)
    expected = tiny.head(features, training=False)
    got = rewritten(features, training=False)
    assert sorted(got) == sorted(expected)
    for name in expected:
        np.testing.assert_allclose(got[name].numpy(), expected[name].numpy(), rtol=1e-4, atol=1e-5)
    assert all(np.array_equal(a, b) for a, b in zip(before, tiny.head.get_weights()))
    assert rewrite(rewritten) is rewritten  # nothing left to rewrite


def test_the_tensor_feeding_the_spatial_bn_keeps_its_own_int8_range(tiny, tmp_path):
    """The regression: the converter gave the BN's input the range of input x multiplier."""
    from quantize.quantization.batchnorm import rewrite
    from quantize.quantization.convert import convert
    from edge.interpreter import make_interpreter

    calibration = _features(tiny, 24, 2)
    attention = keras.Model(tiny.head.input,
                            tiny.head.get_layer("spatial_attention2_apply").get_output_at(-1))
    float_max = float(np.max(attention.predict(calibration, verbose=0)))
    path = tmp_path / "head.tflite"
    path.write_bytes(convert(rewrite(tiny.head), (1, 4) + tiny.feature_shape, "features", "ptq",
                             list(calibration), "int8", "float32"))
    interpreter = make_interpreter(str(path), device="cpu", threads=1)
    tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
    ops = [op for op in interpreter._get_ops_details()
           if op["op_name"] == "DEPTHWISE_CONV_2D"
           and "spatial_bn" in tensors[op["outputs"][0]]["name"]]
    assert len(ops) == 1
    scale, zero_point = tensors[ops[0]["inputs"][0]]["quantization"]
    int8_max = (127 - zero_point) * scale
    assert float_max * 0.9 <= int8_max <= float_max * 1.5
