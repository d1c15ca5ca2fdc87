"""Edge TPU (Coral) readiness of the int8 frame model: op-by-op compatibility, and compiling.

The Edge TPU runs a model from its first op up to the first op it cannot take; that op and
*everything after it* run on the CPU. So the report lists each op against the Edge TPU's
supported operations (https://coral.ai/docs/edgetpu/models-intro/#supported-operations, as of
compiler 16) and says where the first unsupported op falls. Limits checked here are the ones a
frame model can break: int8/uint8 tensors only, static shapes, batch 1, tensors of rank <= 4.
``edgetpu_compiler`` is run when it is on PATH (x86-64 Linux only); otherwise the report says
how to compile.
"""

import os
import shutil
import subprocess

# Edge TPU compiler 16 supported ops (TFLite builtin names).
SUPPORTED_OPS = frozenset({
    "ADD", "AVERAGE_POOL_2D", "CONCATENATION", "CONV_2D", "DEPTHWISE_CONV_2D", "DEQUANTIZE",
    "EXP", "FLOOR", "FULLY_CONNECTED", "GATHER", "HARD_SWISH", "L2_NORMALIZATION", "LOG",
    "LOGISTIC", "LSTM", "MAX_POOL_2D", "MAXIMUM", "MEAN", "MINIMUM", "MUL", "PACK", "PAD",
    "PRELU", "QUANTIZE", "REDUCE_MAX", "REDUCE_MIN", "RELU", "RELU6", "RELU_N1_TO_1", "RESHAPE",
    "RESIZE_BILINEAR", "RESIZE_NEAREST_NEIGHBOR", "RSQRT", "SLICE", "SOFTMAX", "SPACE_TO_DEPTH",
    "SPLIT", "SQUARED_DIFFERENCE", "SQUEEZE", "STRIDED_SLICE", "SUB", "SUM", "SQUARE", "TANH",
    "TRANSPOSE", "TRANSPOSE_CONV",
})
INTEGER_DTYPES = ("int8", "uint8", "int32")  # int32: biases and shape operands


def compatibility(interpreter):
    """Op-by-op Edge TPU report of a loaded (undelegated) int8 interpreter."""
    tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
    ops = []
    first_unsupported = None
    for position, op in enumerate(interpreter._get_ops_details()):
        problems = []
        if op["op_name"] not in SUPPORTED_OPS:
            problems.append("op not supported by the Edge TPU")
        for index in [i for i in list(op["inputs"]) + list(op["outputs"]) if i >= 0]:
            detail = tensors.get(index)
            if detail is None:
                continue
            dtype = getattr(detail["dtype"], "__name__", str(detail["dtype"]))
            if dtype not in INTEGER_DTYPES and op["op_name"] not in ("QUANTIZE", "DEQUANTIZE"):
                problems.append("tensor %s is %s (Edge TPU needs int8)" % (detail["name"], dtype))
            if len(detail["shape"]) > 4 and op["op_name"] != "RESHAPE":
                problems.append("tensor %s has rank %d (> 4)" % (detail["name"], len(detail["shape"])))
        for detail in interpreter.get_input_details():
            if detail["shape"][0] != 1 and position == 0:
                problems.append("batch is %d, must be 1" % detail["shape"][0])
        entry = {"index": position, "op": op["op_name"], "edgetpu": not problems}
        if problems:
            entry["problems"] = problems
            if first_unsupported is None:
                first_unsupported = entry
        ops.append(entry)
    mapped = first_unsupported["index"] if first_unsupported else len(ops)
    return {
        "ops": ops,
        "op_count": len(ops),
        "first_unsupported": first_unsupported,
        "ops_on_edgetpu": mapped,
        "ops_on_cpu": len(ops) - mapped,
        "summary": ("all %d ops can run on the Edge TPU" % len(ops)) if first_unsupported is None
        else ("op %d (%s) is the first the Edge TPU cannot run (%s); it and the %d ops after it "
              "would run on the CPU" % (first_unsupported["index"], first_unsupported["op"],
                                        "; ".join(first_unsupported["problems"]),
                                        len(ops) - mapped - 1)),
    }


COMPILE_HINT = ("edgetpu_compiler is not on PATH; on an x86-64 Debian/Ubuntu host install it "
                "(https://coral.ai/docs/edgetpu/compiler/: apt-get install edgetpu-compiler) and "
                "run: edgetpu_compiler -s -o OUT frame.tflite  -> OUT/frame_edgetpu.tflite")


def compile_for_edgetpu(model_path, out_dir):
    """Run edgetpu_compiler if present: (path of *_edgetpu.tflite or None, log text)."""
    compiler = shutil.which("edgetpu_compiler")
    if compiler is None:
        return None, COMPILE_HINT
    result = subprocess.run([compiler, "-s", "-o", out_dir, model_path], capture_output=True,
                            text=True, timeout=600)
    stem = os.path.splitext(os.path.basename(model_path))[0]
    compiled = os.path.join(out_dir, stem + "_edgetpu.tflite")
    log = (result.stdout + result.stderr).strip()
    if result.returncode != 0 or not os.path.isfile(compiled):
        return None, "edgetpu_compiler failed (exit %d): %s" % (result.returncode, log[-500:])
    return compiled, log
