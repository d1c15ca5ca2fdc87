"""Describe a TFLite model as manifest records, without TensorFlow.

The quantize side calls :func:`describe_model` to fill ``manifest.models``; the device side calls
:func:`tensor_specs` on the loaded interpreter to check the model is the one the manifest names.
Names are the *signature* keys (``action``, ``identity_embedding``), not the internal tensor names
(``StatefulPartitionedCall:1``), because only the signature keys survive reconversion.
"""

import gzip
import os

import numpy as np

from edge.manifest import ModelFile, TensorSpec, sha256_file


def signature_indices(interpreter):
    """{"inputs": {name: tensor index}, "outputs": {...}} of the model's only/first signature.

    Empty dicts if the model has no signature (then tensor names are used instead).
    """
    try:
        signatures = interpreter.get_signature_list()
    except (AttributeError, ValueError, RuntimeError):
        signatures = {}
    if not signatures:
        return {"inputs": {}, "outputs": {}}
    key = "serving_default" if "serving_default" in signatures else sorted(signatures)[0]
    runner = interpreter.get_signature_runner(key)
    return {
        "inputs": {n: d["index"] for n, d in runner.get_input_details().items()},
        "outputs": {n: d["index"] for n, d in runner.get_output_details().items()},
    }


def _spec(detail, name):
    params = detail.get("quantization_parameters") or {}
    scales = params.get("scales")
    zero_points = params.get("zero_points")
    scale, zero_point = detail.get("quantization", (0.0, 0))
    if scales is not None and len(scales) > 1:  # per-channel (never on model I/O): keep first
        scale, zero_point = float(scales[0]), int(zero_points[0])
    quantized = bool(scale)
    return TensorSpec(name=name, shape=[int(d) for d in detail["shape"]],
                      dtype=np.dtype(detail["dtype"]).name,
                      scale=float(scale) if quantized else None,
                      zero_point=int(zero_point) if quantized else None)


def tensor_specs(interpreter):
    """(inputs, outputs): lists of TensorSpec named by signature key, in signature order."""
    sig = signature_indices(interpreter)
    result = []
    for kind, details in (("inputs", interpreter.get_input_details()),
                          ("outputs", interpreter.get_output_details())):
        by_index = {d["index"]: d for d in details}
        names = sig[kind]
        if names:
            specs = [_spec(by_index[index], name) for name, index in names.items()]
        else:
            specs = [_spec(d, d["name"]) for d in details]
        result.append(specs)
    return result[0], result[1]


def op_names(interpreter):
    """Sorted distinct op names (for the manifest's ``ops``; e.g. spotting a float fallback)."""
    try:
        details = interpreter._get_ops_details()  # no public API for ops; absent on old runtimes
    except AttributeError:
        return []
    return sorted({d.get("op_name", "") for d in details} - {""})


def _plain_interpreter(path):
    """An interpreter without the default (XNNPACK) delegate, so ``ops`` lists real kernels."""
    from edge.backends.litert import check_model_file, interpreter_module
    module = interpreter_module()
    check_model_file(path)
    resolver = getattr(getattr(module, "OpResolverType", None),
                       "BUILTIN_WITHOUT_DEFAULT_DELEGATES", None)
    kwargs = {"experimental_op_resolver_type": resolver} if resolver is not None else {}
    interpreter = module.Interpreter(model_path=os.fspath(path), **kwargs)
    interpreter.allocate_tensors()
    return interpreter


def describe_model(path, interpreter=None):
    """A :class:`ModelFile` for ``path`` (file name relative to its directory)."""
    if interpreter is None:
        interpreter = _plain_interpreter(path)
    inputs, outputs = tensor_specs(interpreter)
    return ModelFile(file=os.path.basename(os.fspath(path)), sha256=sha256_file(path),
                     size_bytes=os.path.getsize(path), inputs=inputs, outputs=outputs,
                     ops=op_names(interpreter))


def sizes(path):
    """Raw and gzip-compressed size: the gzip size is what pruning's zeros buy on the wire.

    Used for report.json (``edgekit quantize``) and by ``edgekit bench`` on a board, so both
    report the same figure for the same file.
    """
    with open(path, "rb") as handle:
        data = handle.read()
    return {"raw_bytes": len(data), "gzip_bytes": len(gzip.compress(data, compresslevel=9))}
