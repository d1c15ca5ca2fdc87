"""Int8 biases stored at the scale the kernels read them with.

TFLite's int8 CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED kernels add the int32 bias to the
accumulator of input x weight products, so they read it at ``input_scale * weight_scale[c]``,
whatever scale the bias tensor records. The MLIR quantizer sometimes records another one: in the
QAT export's ``clip.tflite`` (the QAT frame model and the calibrated head, converted as one
graph), the 60 LSTM input matmuls and a depthwise conv that read the frame model's features had
biases quantized at 1/15 of the scale their input ended up with (the calibrated range of the
pooled features, before that tensor took the frame output's fake-quant scale). Each of those
ops then added its bias 15 times over: the first LSTM matmul's output was 123 int8 levels off,
and identity probabilities moved by up to 0.7 against frame.tflite + head.tflite, which
calibrate the same weights apart and do not have the defect (neither had any converted PTQ
model we checked).

:func:`repair` re-quantizes such a bias at the scale the kernel uses, which makes the op
compute what the tensor's own (scale, values) say: the float bias of the Keras model, to within
one step of the new scale. :func:`mismatched` lists the ops a file still has, for the int8
gate.
"""

from dataclasses import dataclass

import numpy as np

from edge.errors import EdgekitError

BIAS_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")
TOLERANCE = 1e-3  # relative: the converter stores scales as float32


@dataclass
class Mismatch:
    op: str
    output: str
    bias_tensor: int
    ratio: float  # recorded bias scale / input_scale * weight_scale (median over channels)


def _model(blob):
    import quantize.tf_compat  # noqa: F401  (TF_USE_LEGACY_KERAS before TensorFlow's first import)
    from tensorflow.lite.tools import flatbuffer_utils

    return flatbuffer_utils, flatbuffer_utils.read_model_from_bytearray(bytearray(blob))


def _scales(tensor):
    q = tensor.quantization
    if q is None or q.scale is None or len(q.scale) == 0:
        return None
    return np.asarray(q.scale, dtype=np.float64)


def _expected(subgraph, op):
    """(bias tensor index, the scale per channel the kernel reads it at), or None."""
    inputs = list(op.inputs)
    if len(inputs) < 3 or inputs[2] < 0:
        return None
    x, w, b = (subgraph.tensors[i] for i in inputs[:3])
    x_scale, w_scale, b_scale = _scales(x), _scales(w), _scales(b)
    if x_scale is None or w_scale is None or b_scale is None or len(x_scale) != 1:
        return None
    return inputs[2], x_scale[0] * w_scale


def _walk(model):
    """(subgraph index, subgraph, op, op name, (bias tensor, expected scale)) per bias op."""
    from tensorflow.lite.python import schema_py_generated as schema

    names = {getattr(schema.BuiltinOperator, n): n for n in dir(schema.BuiltinOperator)
             if not n.startswith("_")}
    for index, subgraph in enumerate(model.subgraphs):
        for op in subgraph.operators:
            code = model.operatorCodes[op.opcodeIndex]
            builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
            if names.get(builtin) not in BIAS_OPS:
                continue
            expected = _expected(subgraph, op)
            if expected is None:
                continue
            yield index, subgraph, op, names[builtin], expected


def mismatched(blob):
    """The ops of TFLite model bytes whose bias scale is not input_scale * weight_scale."""
    _, model = _model(blob)
    found = []
    for _, subgraph, op, name, (bias, scale) in _walk(model):
        recorded = _scales(subgraph.tensors[bias])
        ratio = recorded / np.broadcast_to(scale, recorded.shape)
        if np.max(np.abs(ratio - 1.0)) > TOLERANCE:
            output = subgraph.tensors[op.outputs[0]].name
            output = output.decode() if isinstance(output, bytes) else output
            found.append(Mismatch(name, output, bias, float(np.median(ratio))))
    return found


def repair(blob):
    """(model bytes with every mismatched int32 bias re-quantized, number of biases repaired)."""
    flatbuffer_utils, model = _model(blob)
    wanted = {}  # (subgraph index, bias tensor) -> scale the reading ops agree on
    for index, subgraph, _, _, (bias, scale) in _walk(model):
        recorded = _scales(subgraph.tensors[bias])
        scale = np.broadcast_to(scale, recorded.shape).astype(np.float64)
        if np.max(np.abs(recorded / scale - 1.0)) <= TOLERANCE:
            continue
        key = (index, bias)
        if key in wanted and np.max(np.abs(wanted[key] / scale - 1.0)) > TOLERANCE:
            raise EdgekitError("bias tensor %d is read at two different scales; this int8 model "
                               "cannot be repaired, use --method ptq" % bias)
        wanted[key] = scale
    for (index, bias), scale in wanted.items():
        tensor = model.subgraphs[index].tensors[bias]
        buffer = model.buffers[tensor.buffer]
        if tensor.type != 2 or buffer.data is None:  # TensorType.INT32 with constant data
            raise EdgekitError("bias tensor %d is not a constant int32 tensor; this int8 model "
                               "cannot be repaired" % bias)
        values = np.frombuffer(bytes(bytearray(buffer.data)), dtype="<i4").astype(np.float64)
        zero_points = np.asarray(tensor.quantization.zeroPoint, dtype=np.float64)
        real = (values - zero_points) * _scales(tensor)
        requantized = np.clip(np.round(real / scale), -2 ** 31, 2 ** 31 - 1).astype("<i4")
        buffer.data = np.frombuffer(requantized.tobytes(), dtype=np.uint8)
        tensor.quantization.scale = [float(s) for s in scale.astype(np.float32)]
        tensor.quantization.zeroPoint = [0] * len(scale)
    if not wanted:
        return blob, 0
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model)), len(wanted)
