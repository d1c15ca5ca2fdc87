"""The window head as int8 weights with float activations, every op on XNNPACK.

Why not int8 like the frame model: the head always runs on the CPU (no accelerator takes its
attention and task heads), and in ai-edge-litert 2.3 XNNPACK has no int8 kernel for four of its
ops (SOFTMAX, BATCH_MATMUL, PRELU, L2_NORMALIZATION), so the int8 EfficientNet-B3 head ran in 4
XNNPACK partitions with 7 nodes on the built-in kernels between them. With int8 weights and float
activations (LiteRT's dynamic-range quantization: XNNPACK quantizes each matmul's input on the
fly and multiplies in int8), the weights stay 1 byte each, as many as before, and every op has a
kernel, with two fix-ups this module makes:

* :func:`prepare`: the embedding's UnitNormalization is written as ``x * rsqrt(mean(x^2) * n)``,
  the same function, so the converter emits MEAN/RSQRT/MUL (XNNPACK has them) instead of
  L2_NORMALIZATION (XNNPACK has none, in any precision);
* :func:`float_depthwise`: the converter keeps int8 weights on the depthwise convolutions of the
  separable convs, and XNNPACK has no kernel for a depthwise conv with int8 weights and a float
  input. Their weights (3x3 per channel: 8 K values on B3) are stored in float instead.

Measured on the EfficientNet-B3 swim head (``benchmarks/bench_head.py``; README, "The head with
int8 weights and float activations"): one XNNPACK partition, no node on the built-in kernels,
against 4 partitions and 7 nodes for the int8 head, and 0.81 x its time right after the frame
model. ``tests/test_quantize_hybrid.py`` holds it to 0.02 of the float head. Nothing is
calibrated: the head needs no representative data.
"""

import numpy as np

from edge.errors import EdgekitError
from quantize.quantization import convert as conv
from quantize.tf_compat import keras, tf

METHOD = "dynamic"  # the converter's name for int8 weights with float activations
DESCRIPTION = ("int8 weights, float activations (dynamic range: XNNPACK quantizes each matmul's "
               "input on the fly); every op on XNNPACK")
# ops whose weights must be int8 in the converted head (what its size and speed rely on), from
# this many values on: the converter leaves smaller ones in float (the attention's 32-value score
# vector, the CBAM 3x3x2 convs), where int8 would save nothing
INT8_WEIGHT_OPS = ("FULLY_CONNECTED", "CONV_2D")
SMALL_WEIGHTS = 1024


class ExplicitUnitNormalization(keras.layers.Layer):
    """``keras.layers.UnitNormalization`` over the last axis, as ops XNNPACK runs.

    ``x * rsqrt(max(mean(x^2) * n, eps))`` is ``x / ||x||`` as UnitNormalization computes it
    (``tf.math.l2_normalize``, eps 1e-12); through MEAN rather than SUM, the converter's L2
    normalization pattern does not match it, so no L2_NORMALIZATION op is emitted.
    """

    def call(self, inputs):
        width = float(inputs.shape[-1])
        squares = tf.reduce_mean(tf.square(inputs), axis=-1, keepdims=True) * width
        return inputs * tf.math.rsqrt(tf.maximum(squares, 1e-12))


def prepare(model):
    """A copy of ``model`` with every last-axis UnitNormalization as
    :class:`ExplicitUnitNormalization` (same name, same function); ``model`` if it has none."""
    targets = {layer.name for layer in model.layers
               if isinstance(layer, keras.layers.UnitNormalization)
               and tuple(np.atleast_1d(layer.axis)) in ((-1,), (len(layer.input_shape) - 1,))}
    if not targets:
        return model

    def clone(layer):
        if layer.name in targets:
            return ExplicitUnitNormalization(name=layer.name)
        return layer.__class__.from_config(layer.get_config())

    copy = keras.models.clone_model(model, clone_function=clone)
    for layer in copy.layers:
        if layer.weights:
            layer.set_weights(model.get_layer(layer.name).get_weights())
    return copy


def convert(model, shapes, artifact="head.tflite"):
    """TFLite bytes of ``model`` (a float Keras head) with int8 weights and float activations."""
    blob = conv.convert(prepare(model), shapes, None, METHOD, artifact=artifact)
    return float_depthwise(blob)


def _builtin(model, op):
    code = model.operatorCodes[op.opcodeIndex]
    return max(code.builtinCode, code.deprecatedBuiltinCode)


def float_depthwise(blob):
    """``blob`` with the int8 weights of every depthwise conv on a float input stored in float
    (dequantized with their own per-channel scales: the same values the hybrid kernel uses)."""
    import quantize.tf_compat  # noqa: F401  (TF_USE_LEGACY_KERAS before TensorFlow's first import)
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(blob))
    changed = 0
    for subgraph in model.subgraphs:
        for op in subgraph.operators:
            if _builtin(model, op) != schema.BuiltinOperator.DEPTHWISE_CONV_2D:
                continue
            x, w = subgraph.tensors[op.inputs[0]], subgraph.tensors[op.inputs[1]]
            if x.type != schema.TensorType.FLOAT32 or w.type != schema.TensorType.INT8:
                continue
            buffer = model.buffers[w.buffer]
            codes = np.frombuffer(bytes(bytearray(buffer.data)), np.int8).reshape(w.shape)
            q = w.quantization
            axis = [1] * codes.ndim
            axis[int(q.quantizedDimension)] = -1
            scale = np.asarray(q.scale, np.float32).reshape(axis)
            zero = np.asarray(q.zeroPoint if q.zeroPoint is not None else [0],
                              np.float32).reshape(axis if len(q.scale) > 1 else [1] * codes.ndim)
            values = ((codes.astype(np.float32) - zero) * scale).astype(np.float32)
            buffer.data = np.frombuffer(values.tobytes(), np.uint8)
            w.type = schema.TensorType.FLOAT32
            w.quantization = None
            changed += 1
    if not changed:
        return blob
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def check(path_or_bytes, artifact="head.tflite"):
    """Raise EdgekitError unless every FULLY_CONNECTED/CONV_2D of the head with
    :data:`SMALL_WEIGHTS` weights or more has them in int8, and no activation is int8 (a head
    half-converted would be neither fast nor as exact)."""
    from quantize.quantization.gate import _interpreter

    interpreter = _interpreter(path_or_bytes)
    tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
    for op in interpreter._get_ops_details():
        name = op["op_name"]
        ins = [i for i in op["inputs"] if i >= 0]
        if name in INT8_WEIGHT_OPS and len(ins) > 1:
            weight = tensors[ins[1]]
            if weight["dtype"] != np.int8 and int(np.prod(weight["shape"])) >= SMALL_WEIGHTS:
                raise EdgekitError("%s: op %s keeps %s weights (%s); the head's matmuls must "
                                   "have int8 weights; re-run edgekit quantize"
                                   % (artifact, name, np.dtype(weight["dtype"]).name,
                                      weight["name"]))
        elif name in ("QUANTIZE", "DEQUANTIZE"):
            raise EdgekitError("%s: op %s moves activations between int8 and float; the head "
                               "computes in float with int8 weights; re-run edgekit quantize"
                               % (artifact, name))
