"""The int8-only gate: an integer artifact may contain no op that computes in float.

``TFLITE_BUILTINS_INT8`` alone is not a gate: the converter rejects ops it has no kernel for at
all (``tf.Erf`` -> "neither a custom op nor a flex op"), but an op that has a float TFLite kernel
and no int8 one (SIN, CUMSUM, an unfused LSTM's WHILE loop) is kept in float behind a
DEQUANTIZE, and the model converts "successfully". On a Coral or an int8-only NPU that op, and
everything after it, falls back to the CPU. So after conversion every op's tensors are checked:
only the QUANTIZE of a model input and the DEQUANTIZE of a model output may touch float.
"""

import re

import numpy as np

from edge.errors import EdgekitError

FLOAT_DTYPES = (np.float32, np.float16, np.float64)
# Control flow hides subgraphs the op list does not show (and no accelerator runs them).
FORBIDDEN_INT8_OPS = ("WHILE", "IF", "CALL_ONCE", "FLEX_DELEGATE")
HINT = ("replace it with int8-capable ops (see the TFLite int8 op list), or use --method "
        "dynamic/fp16 for a float model")


def _interpreter(path_or_bytes):
    from edge.tflite_inspect import _plain_interpreter  # TF-free, no XNNPACK (real kernels)

    if isinstance(path_or_bytes, (bytes, bytearray)):
        from edge.interpreter import interpreter_module
        module = interpreter_module()
        resolver = getattr(getattr(module, "OpResolverType", None),
                           "BUILTIN_WITHOUT_DEFAULT_DELEGATES", None)
        kwargs = {"experimental_op_resolver_type": resolver} if resolver is not None else {}
        interpreter = module.Interpreter(model_content=bytes(path_or_bytes), **kwargs)
        interpreter.allocate_tensors()
        return interpreter
    return _plain_interpreter(path_or_bytes)


def op_list(path_or_bytes):
    """Every op of the main subgraph in execution order: [(op name, index)]."""
    interpreter = _interpreter(path_or_bytes)
    return [(d["op_name"], d["index"]) for d in interpreter._get_ops_details()]


def float_ops(path_or_bytes):
    """Ops that compute in float, in execution order: [(op name, detail)]; [] for an int8 model."""
    interpreter = _interpreter(path_or_bytes)
    tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
    model_inputs = {d["index"] for d in interpreter.get_input_details()}
    model_outputs = {d["index"] for d in interpreter.get_output_details()}
    found = []
    for op in interpreter._get_ops_details():
        name = op["op_name"]
        ins = [i for i in op["inputs"] if i >= 0]
        outs = [i for i in op["outputs"] if i >= 0]
        if name in FORBIDDEN_INT8_OPS:
            found.append((name, "control flow (its subgraph is not int8-checked and no "
                                "accelerator runs it)"))
            continue
        if name == "QUANTIZE" and all(i in model_inputs for i in ins):
            continue
        if name == "DEQUANTIZE" and all(o in model_outputs for o in outs):
            continue
        floats = [tensors[i]["name"] for i in ins + outs
                  if i in tensors and tensors[i]["dtype"] in FLOAT_DTYPES]
        if floats:
            found.append((name, "float tensor %s" % floats[0]))
    return found


def check_int8(path_or_bytes, artifact):
    """Raise EdgekitError naming the first op that stays float in an integer artifact, or the
    first op whose int32 bias is stored at another scale than its kernel reads it at."""
    check_bias_scales(path_or_bytes, artifact)
    found = float_ops(path_or_bytes)
    culprits = [f for f in found if f[0] not in ("QUANTIZE", "DEQUANTIZE")] or found
    if culprits:
        name, why = culprits[0]
        others = sorted({f[0] for f in culprits[1:]} - {name})
        raise EdgekitError("%s is not int8-only: op %s stays float (%s)%s; %s"
                           % (artifact, name, why,
                              " (also: %s)" % ", ".join(others) if others else "", HINT))


def check_bias_scales(path_or_bytes, artifact):
    """Raise EdgekitError when a conv/FC bias scale is not input scale x weight scale (the op
    would add a wrong bias; see :mod:`quantize.quantization.bias_scale`)."""
    from quantize.quantization.bias_scale import mismatched

    blob = path_or_bytes
    if not isinstance(blob, (bytes, bytearray)):
        with open(path_or_bytes, "rb") as handle:
            blob = handle.read()
    found = mismatched(blob)
    if found:
        first = found[0]
        raise EdgekitError("%s has %d op(s) whose int8 bias is stored at another scale than the "
                           "kernel reads it at (first: %s %s, recorded/expected %.3g); repair the "
                           "model with quantize.quantization.bias_scale.repair"
                           % (artifact, len(found), first.op, first.output, first.ratio))


def conversion_error(exc, artifact, method):
    """An EdgekitError for a converter failure, naming the offending TF op(s) when it can."""
    text = str(exc)
    ops = re.findall(r"TF Select ops: ([^\n]+)", text)
    if not ops:
        ops = re.findall(r"'(tf\.[A-Za-z0-9_]+)' op is neither a custom op nor a flex op", text)
    if not ops:
        ops = re.findall(r"failed to legalize operation '([^']+)'", text)
    if ops:
        what = "op %s has no int8 TFLite kernel" % ", ".join(sorted(set(ops)))
        if method not in ("ptq", "qat", "prune-qat"):
            what = "op %s has no TFLite builtin kernel" % ", ".join(sorted(set(ops)))
        return EdgekitError("cannot convert %s (--method %s): %s; %s" % (artifact, method, what, HINT))
    lines = [line.strip() for line in text.splitlines() if "error:" in line]
    detail = lines[0] if lines else (text.strip().splitlines() or [type(exc).__name__])[0]
    return EdgekitError("cannot convert %s (--method %s): %s" % (artifact, method, detail[:300]))
