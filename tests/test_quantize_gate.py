"""The int8-only gate: float-only ops are caught by name, int8 models pass."""

import numpy as np
import pytest

from edge.errors import EdgekitError
from quantize.quantization import gate
from quantize.quantization.convert import convert
from quantize.tf_compat import keras, tf


def _model(fn):
    inp = keras.Input((8,), name="x")
    x = keras.layers.Dense(8)(inp)
    if fn is not None:
        x = keras.layers.Lambda(fn)(x)
    x = keras.layers.Dense(4, name="y")(x)
    return keras.Model(inp, x)


SAMPLES = [np.random.default_rng(i).normal(size=8).astype(np.float32) for i in range(8)]


def test_float_only_op_that_converts_is_caught_by_name():
    # SIN has a float TFLite kernel and no int8 one: the converter keeps it float behind a
    # DEQUANTIZE even with int8-only builtins, so only the post-conversion gate sees it.
    blob = convert(_model(tf.math.sin), (1, 8), "x", "ptq", SAMPLES, "int8", "int8", "y")
    with pytest.raises(EdgekitError, match=r"op SIN stays float") as info:
        gate.check_int8(blob, "head.tflite")
    assert "head.tflite" in str(info.value) and "--method dynamic" in str(info.value)


def test_op_without_any_kernel_fails_conversion_with_its_name():
    with pytest.raises(EdgekitError, match=r"Erf") as info:
        convert(_model(tf.math.erf), (1, 8), "x", "ptq", SAMPLES, "int8", "int8", "y",
                artifact="frame.tflite")
    message = str(info.value)
    assert "frame.tflite" in message and "\n" not in message


def test_int8_model_passes_and_lists_its_ops():
    blob = convert(_model(None), (1, 8), "x", "ptq", SAMPLES, "int8", "int8", "y")
    gate.check_int8(blob, "frame.tflite")
    assert gate.float_ops(blob) == []
    assert [op for op, _ in gate.op_list(blob)] == ["FULLY_CONNECTED", "FULLY_CONNECTED"]


def test_float_model_is_not_int8():
    blob = convert(_model(None), (1, 8), "x", "fp32")
    assert gate.float_ops(blob)
