"""Int8 biases recorded at another scale than their op reads them (quantize.quantization.bias_scale)."""

import numpy as np
import pytest

from edge.errors import EdgekitError
from quantize.tf_compat import keras

SAMPLES = [np.random.default_rng(i).normal(0, 1, (6,)).astype(np.float32) for i in range(32)]


@pytest.fixture(scope="module")
def int8_dense():
    """An int8 Dense model with a bias large enough to matter, as TFLite bytes."""
    from quantize.quantization.convert import convert

    inputs = keras.Input((6,))
    dense = keras.layers.Dense(5, name="dense")
    model = keras.Model(inputs, dense(inputs))
    kernel, _ = dense.get_weights()
    dense.set_weights([kernel, np.linspace(-2.0, 2.0, 5).astype(np.float32)])
    return convert(model, (1, 6), "x", "ptq", SAMPLES, "int8", "float32", "y")


def _outputs(blob):
    from edge.interpreter import interpreter_module

    interpreter = interpreter_module().Interpreter(model_content=bytes(blob))
    interpreter.allocate_tensors()
    source = interpreter.get_input_details()[0]
    scale, zero_point = source["quantization"]
    results = []
    for sample in SAMPLES[:8]:
        q = np.clip(np.round(sample / scale + zero_point), -128, 127).astype(np.int8)
        interpreter.set_tensor(source["index"], q[None])
        interpreter.invoke()
        results.append(interpreter.get_tensor(interpreter.get_output_details()[0]["index"])[0].copy())
    return np.stack(results)


def _recorded_at(blob, factor):
    """``blob`` with the FC bias recorded at ``factor`` x its scale, values scaled to match:
    the same real bias, but not the scale the kernel reads it at (the converter's defect)."""
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(blob))
    graph = model.subgraphs[0]
    op = next(op for op in graph.operators if len(op.inputs) == 3 and op.inputs[2] >= 0)
    bias = graph.tensors[op.inputs[2]]
    buffer = model.buffers[bias.buffer]
    values = np.frombuffer(bytes(bytearray(buffer.data)), dtype="<i4")
    buffer.data = np.frombuffer(np.round(values / factor).astype("<i4").tobytes(), dtype=np.uint8)
    bias.quantization.scale = [s * factor for s in bias.quantization.scale]
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def test_a_converted_model_has_consistent_bias_scales(int8_dense):
    from quantize.quantization import bias_scale, gate

    assert bias_scale.mismatched(int8_dense) == []
    assert bias_scale.repair(int8_dense) == (int8_dense, 0)
    gate.check_int8(int8_dense, "head.tflite")


def test_a_bias_recorded_at_another_scale_is_found_repaired_and_gated(int8_dense):
    from quantize.quantization import bias_scale, gate

    broken = _recorded_at(int8_dense, 1 / 15.0)
    found = bias_scale.mismatched(broken)
    assert len(found) == 1 and found[0].op == "FULLY_CONNECTED"
    assert found[0].ratio == pytest.approx(1 / 15.0, rel=1e-3)
    reference = _outputs(int8_dense)
    # The kernel adds the stored integers at input x weight scale: 15 times the bias.
    assert np.max(np.abs(_outputs(broken) - reference)) > 1.0
    with pytest.raises(EdgekitError, match="head.tflite has 1 op.*FULLY_CONNECTED"):
        gate.check_int8(broken, "head.tflite")

    repaired, count = bias_scale.repair(broken)
    assert count == 1 and bias_scale.mismatched(repaired) == []
    gate.check_int8(repaired, "head.tflite")
    # Within two steps of the int8 FC output (the repaired bias is rounded once more).
    assert np.max(np.abs(_outputs(repaired) - reference)) <= 2 * _fc_output_scale(int8_dense)


def _fc_output_scale(blob):
    from edge.interpreter import interpreter_module

    interpreter = interpreter_module().Interpreter(model_content=bytes(blob))
    tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
    op = next(op for op in interpreter._get_ops_details() if op["op_name"] == "FULLY_CONNECTED")
    return tensors[op["outputs"][0]]["quantization"][0]
