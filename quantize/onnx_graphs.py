"""Graph rewrites of the QDQ frame model tf2onnx makes from frame.tflite (``edgekit export``).

Three ONNX files come out of one conversion, each for the runtime that reads it:

- ``onnx`` (frame.onnx): tf2onnx's graph as it is, I/O renamed to the TFLite signature names and
  the I/O quantization recorded in its metadata (:func:`with_io_metadata`). uint8 pixels in, int8
  features out, TFLite's asymmetric int8 scales and zero points: what ONNX Runtime runs.
- ``onnx_fp32`` (frame_fp32.onnx, :func:`dequantized`): the same weights with the fake
  quantization removed, float32 I/O: ONNX Runtime's fp32 and TensorRT's fp16/fp32 engines.
- ``onnx_trt_int8`` (frame_trt_int8.onnx, :func:`symmetric_qdq`): the QDQ graph in the form
  TensorRT's explicit quantization accepts. TensorRT's Q/DQ layers are symmetric (zero point 0,
  int8 only, no uint8 and no int32 bias DQ), while TFLite's activations are asymmetric (e.g. the
  features' zero point 16, a sigmoid output's range 0..1). Each activation range TFLite
  calibrated, ``[(-128 - zp) s, (127 - zp) s]``, becomes the symmetric one that covers it,
  ``max(|lo|, |hi|) / 127`` with zero point 0: the same calibrated ranges, never re-calibrated,
  at up to one bit less resolution where a range was one-sided (what TensorRT itself does with
  any asymmetric range). Weights are already symmetric (TFLite per-channel int8, zero point 0)
  and keep their Q/DQ; int32 biases become float. float32 pixels in, float32 features out (a DQ
  after the last Q). ONNX Runtime runs it too, which is how its parity is tested here.
"""

import json

import numpy as np

from edge.onnx_model import METADATA_KEY, io_quantization

def rename_io(model, names):
    """Rename graph inputs/outputs ``{old: new}`` everywhere they appear (in place)."""
    graph = model.graph
    for value in list(graph.input) + list(graph.output):
        if value.name in names:
            value.name = names[value.name]
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name in names:
                node.input[i] = names[name]
        for i, name in enumerate(node.output):
            if name in names:
                node.output[i] = names[name]
    return model


def _attribute(node, name, default):
    for attr in node.attribute:
        if attr.name == name:
            return attr.i
    return default


def dequantized(model):
    """A float copy of the QDQ ``model``: constants dequantized, activation Q/DQ made Identity,
    graph inputs and outputs float32 (see the module docstring)."""
    import onnx
    from onnx import helper, numpy_helper

    result = onnx.ModelProto()
    result.CopyFrom(model)
    graph = result.graph
    constants = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    nodes, folded = [], []
    for node in graph.node:
        if node.op_type == "DequantizeLinear" and node.input[0] in constants:
            zero = constants[node.input[2]] if len(node.input) > 2 and node.input[2] else 0
            folded.append(numpy_helper.from_array(dequantized_constant(
                constants[node.input[0]], constants[node.input[1]], zero,
                _attribute(node, "axis", 1)), node.output[0]))
        elif node.op_type in ("QuantizeLinear", "DequantizeLinear"):
            nodes.append(helper.make_node("Identity", [node.input[0]], [node.output[0]],
                                          name=node.name))
        else:
            nodes.append(node)
    del graph.node[:]
    graph.node.extend(nodes)
    used = {name for node in nodes for name in node.input}
    kept = [t for t in graph.initializer if t.name in used and t.name not in
            {f.name for f in folded}]
    del graph.initializer[:]
    graph.initializer.extend(kept + [t for t in folded if t.name in used])
    for value in list(graph.input) + list(graph.output):
        value.type.tensor_type.elem_type = onnx.TensorProto.FLOAT
    del graph.value_info[:]
    del result.metadata_props[:]
    return result


def with_io_metadata(model):
    """``model`` with its I/O quantization recorded under METADATA_KEY (for ONNX Runtime)."""
    del model.metadata_props[:]
    quantization = io_quantization(model)
    if quantization:
        entry = model.metadata_props.add()
        entry.key = METADATA_KEY
        entry.value = json.dumps({k: list(v) for k, v in sorted(quantization.items())})
    return model


def _iterate_to_quantizer(producer, name, layout_ops=("Transpose", "Reshape", "Identity")):
    node = producer.get(name)
    while node is not None and node.op_type in layout_ops:
        node = producer.get(node.input[0])
    return node if node is not None and node.op_type == "QuantizeLinear" else None


def symmetric_qdq(model):
    """The TensorRT form of the QDQ ``model`` (see the module docstring)."""
    import onnx
    from onnx import helper, numpy_helper

    result = onnx.ModelProto()
    result.CopyFrom(model)
    graph = result.graph
    constants = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    inputs = {v.name for v in graph.input}
    added, symmetric = [], {}

    def symmetric_pair(scale_name, zero_name):
        key = (scale_name, zero_name)
        if key not in symmetric:
            scale = float(np.reshape(constants[scale_name], -1)[0])
            zero = constants[zero_name] if zero_name else np.zeros((), np.int8)
            info = np.iinfo(zero.dtype)
            zp = float(np.reshape(zero, -1)[0])
            bound = max(abs((info.min - zp) * scale), abs((info.max - zp) * scale))
            names = ("%s__sym%d" % (scale_name, len(symmetric)),
                     "%s__sym%d_zp" % (scale_name, len(symmetric)))
            added.append(numpy_helper.from_array(np.array(bound / 127.0, np.float32), names[0]))
            added.append(numpy_helper.from_array(np.array(0, np.int8), names[1]))
            symmetric[key] = names
        return symmetric[key]

    nodes = []
    for node in graph.node:
        quantizer = node.op_type in ("QuantizeLinear", "DequantizeLinear")
        zero_name = node.input[2] if len(node.input) > 2 else ""
        if quantizer and node.input[0] in inputs:  # the pixels' DQ: float pixels go straight in
            nodes.append(helper.make_node("Identity", [node.input[0]], [node.output[0]],
                                          name=node.name))
        elif node.op_type == "DequantizeLinear" and node.input[0] in constants:
            values = constants[node.input[0]]
            zero = constants[zero_name] if zero_name else np.zeros(1, values.dtype)
            if values.dtype == np.int8 and not np.any(zero):
                nodes.append(node)  # symmetric int8 weights: TensorRT's int8 convolution
            else:
                folded = dequantized_constant(values, constants[node.input[1]], zero,
                                              _attribute(node, "axis", 1))
                added.append(numpy_helper.from_array(folded, node.output[0]))
        elif quantizer:
            scale_name, sym_zero = symmetric_pair(node.input[1], zero_name)
            nodes.append(helper.make_node(node.op_type, [node.input[0], scale_name, sym_zero],
                                          list(node.output), name=node.name))
        else:
            nodes.append(node)
    producer = {out: n for n in nodes for out in n.output}
    for value in graph.output:
        quantizer = _iterate_to_quantizer(producer, value.name)
        if quantizer is None:
            continue
        raw = value.name + "__int8"
        for node in nodes:
            node.output[:] = [raw if o == value.name else o for o in node.output]
        nodes.append(helper.make_node("DequantizeLinear", [raw] + list(quantizer.input[1:3]),
                                      [value.name], name=value.name + "__dequantize"))
    del graph.node[:]
    graph.node.extend(nodes)
    used = {name for node in nodes for name in node.input}
    pool = {t.name: t for t in list(graph.initializer) + added}
    del graph.initializer[:]
    graph.initializer.extend(t for name, t in sorted(pool.items()) if name in used)
    for value in list(graph.input) + list(graph.output):
        value.type.tensor_type.elem_type = onnx.TensorProto.FLOAT
    del graph.value_info[:]
    del result.metadata_props[:]
    return result


def dequantized_constant(values, scale, zero, axis):
    """``(values - zero) * scale`` as float32, per channel along ``axis`` for a vector scale."""
    values = values.astype(np.float32)
    scale = scale.astype(np.float32)
    zero = np.asarray(zero).astype(np.float32)
    if scale.size > 1:
        shape = [1] * values.ndim
        shape[axis] = scale.size
        scale = scale.reshape(shape)
        zero = zero.reshape(shape) if zero.size > 1 else zero
    return ((values - zero) * scale).astype(np.float32)
