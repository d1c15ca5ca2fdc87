"""Describe an ONNX frame model as manifest records, without TensorFlow.

Why here, in edge/: the manifest's records for the ONNX variants (``variants.onnx``,
``variants.onnx_fp32``, written by ``edgekit export``) must be checkable on the camera the same
way the TFLite ones are, by code that never imports TensorFlow. This module reads ONNX files with
the ``onnx`` package, imported only when a function here runs (a camera with ONNX Runtime but
without ``onnx`` still runs the models: the runtime adapter reads the quantization from the
model's metadata, see below).

Quantization of a model's inputs and outputs: an ONNX tensor has no scale or zero point of its
own. In a QDQ graph the int8 output is made by a ``QuantizeLinear`` (tf2onnx puts a layout
``Transpose`` between it and the graph output) and the uint8 input is read by a
``DequantizeLinear``; :func:`io_quantization` walks through layout ops to those nodes and reads
their scale and zero point initializers. ``edgekit export`` also records the result in the
model's ``metadata_props`` under :data:`METADATA_KEY` (JSON ``{name: [scale, zero_point]}``), so
ONNX Runtime's ``get_modelmeta()`` gives it on a device without the ``onnx`` package; export
checks the two agree.
"""

import json
import os

import numpy as np

from edge.errors import EdgekitError
from edge.manifest import ModelFile, TensorSpec, sha256_file

METADATA_KEY = "edgekit.io_quantization"
# ONNX TensorProto element types -> numpy dtype names (the manifest's DTYPES).
ELEM_TYPES = {1: "float32", 2: "uint8", 3: "int8", 5: "int16", 6: "int32", 7: "int64",
              9: "bool", 10: "float16"}
# Ops that move or reshape data without changing values: quantization passes through them.
LAYOUT_OPS = ("Transpose", "Reshape", "Identity", "Squeeze", "Unsqueeze", "Flatten")
EXPORT_HINT = "run: edgekit export --model DIR"


def onnx_module():
    """The ``onnx`` package, or an EdgekitError saying how to install it."""
    try:
        import onnx
    except ImportError:
        raise EdgekitError("reading ONNX files needs the onnx package; install it with: "
                           "pip install 'edgekit[export]' (or pip install onnx)")
    return onnx


def load_onnx(path):
    """The ModelProto of ``path``; EdgekitError for a missing or unparsable file."""
    onnx = onnx_module()
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise EdgekitError("ONNX model %s does not exist; %s" % (path, EXPORT_HINT))
    try:
        model = onnx.load(path)
    except Exception as exc:  # onnx raises DecodeError, ValueError, ... for a corrupt file
        raise EdgekitError("%s is not a readable ONNX model (%s); the file is corrupt or "
                           "truncated, copy it again or %s"
                           % (path, str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
                              EXPORT_HINT))
    if not model.graph.node:
        raise EdgekitError("%s holds no ONNX graph; the file is corrupt or of another format, %s"
                           % (path, EXPORT_HINT))
    return model


def _initializer(model, name):
    from onnx import numpy_helper

    for tensor in model.graph.initializer:
        if tensor.name == name:
            return numpy_helper.to_array(tensor)
    for node in model.graph.node:  # tf2onnx sometimes keeps small constants as Constant nodes
        if node.op_type == "Constant" and node.output[0] == name:
            return numpy_helper.to_array(node.attribute[0].t)
    return None


def _scale_zero_point(model, node):
    scale = _initializer(model, node.input[1])
    zero = _initializer(model, node.input[2]) if len(node.input) > 2 and node.input[2] else 0
    if scale is None or np.size(scale) != 1:
        return None  # per-channel or computed: never on a model's inputs/outputs
    return float(np.reshape(scale, -1)[0]), int(np.reshape(zero, -1)[0])


def io_quantization(model):
    """{graph input/output name: (scale, zero_point)} for the quantized ones (see module doc)."""
    producer = {out: node for node in model.graph.node for out in node.output}
    consumers = {}
    for node in model.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    result = {}
    for value in model.graph.output:
        node = producer.get(value.name)
        while node is not None and node.op_type in LAYOUT_OPS:
            node = producer.get(node.input[0])
        if node is not None and node.op_type == "QuantizeLinear":
            found = _scale_zero_point(model, node)
            if found:
                result[value.name] = found
    for value in model.graph.input:
        name, seen = value.name, 0
        while seen < 8:
            users = consumers.get(name, [])
            if len(users) != 1:
                break
            node, seen = users[0], seen + 1
            if node.op_type == "DequantizeLinear":
                found = _scale_zero_point(model, node)
                if found:
                    result[value.name] = found
                break
            if node.op_type not in LAYOUT_OPS:
                break
            name = node.output[0]
    return result


def metadata_quantization(metadata):
    """{name: (scale, zero_point)} from a model's metadata map (``METADATA_KEY``), else {}."""
    text = (metadata or {}).get(METADATA_KEY)
    if not text:
        return {}
    try:
        return {name: (float(pair[0]), int(pair[1])) for name, pair in json.loads(text).items()}
    except (ValueError, TypeError, IndexError, AttributeError):
        raise EdgekitError("the ONNX model's %s metadata is not {name: [scale, zero_point]}; "
                           "%s" % (METADATA_KEY, EXPORT_HINT))


def value_spec(value, quantization):
    """A TensorSpec for a graph input/output ``ValueInfoProto``."""
    tensor_type = value.type.tensor_type
    dtype = ELEM_TYPES.get(tensor_type.elem_type)
    if dtype is None:
        raise EdgekitError("ONNX tensor %s has element type %d, which edgekit does not run"
                           % (value.name, tensor_type.elem_type))
    shape = [int(d.dim_value) if d.HasField("dim_value") else -1 for d in tensor_type.shape.dim]
    scale, zero_point = quantization.get(value.name, (None, None))
    return TensorSpec(name=value.name, shape=shape, dtype=dtype, scale=scale,
                      zero_point=zero_point)


def tensor_specs(model):
    """(inputs, outputs) of ``model`` as TensorSpec lists, in graph order."""
    quantization = io_quantization(model)
    initializers = {t.name for t in model.graph.initializer}
    inputs = [value_spec(v, quantization) for v in model.graph.input if v.name not in initializers]
    outputs = [value_spec(v, quantization) for v in model.graph.output]
    return inputs, outputs


def describe_onnx(path):
    """A :class:`ModelFile` for the ONNX file ``path`` (file name relative to its directory)."""
    model = load_onnx(path)
    inputs, outputs = tensor_specs(model)
    return ModelFile(file=os.path.basename(os.fspath(path)), sha256=sha256_file(path),
                     size_bytes=os.path.getsize(path), inputs=inputs, outputs=outputs,
                     ops=sorted({node.op_type for node in model.graph.node}))
