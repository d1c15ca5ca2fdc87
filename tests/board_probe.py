"""Parity probe: run on a board (and on x86) the same inputs through frame/head and the runner.

``python board_probe.py JOB.json`` with ``PYTHONPATH`` holding a copy of ``edge/``. JOB is
``{"model_dir", "inputs" (npz: frames uint8 N x H x W x 3 RGB, and per head input NAME a key
``head:NAME``, W windows of it as the ring makes them),
"video", "out" (npz written), "parts" (optional: frame, head, stream)}``. Writes, per kernel path
(``xnnpack``: LiteRT's default delegate; ``builtin``: ``BUILTIN_WITHOUT_DEFAULT_DELEGATES``), the
raw frame outputs (every output of a frame, flattened and concatenated in name order) and head
outputs, the video as OpenCV decodes it here, and the runner's
per-window task values over that decoded video and over the x86-decoded frames (which separates
decoder from kernel differences). Part ``onnx``: the frame outputs of ``frame.onnx`` (``edgekit
export``'s int8 QDQ graph) through edgekit's own onnxruntime backend (1 thread), key
``frame/onnxruntime``.

Why a test helper and not a product module: it compares kernels on fixed inputs, which no user
of the device runtime needs; the product path it checks (edge.runner) is imported unchanged.
Python 3.9 syntax, no TensorFlow: it runs on the bullseye board's own Python.
"""

import json
import os
import platform
import sys

import cv2
import numpy as np

from edge.interpreter import interpreter_module
from edge.runner import StreamingRunner
from edge.tflite_inspect import signature_indices

KERNELS = ("xnnpack", "builtin")


def interpreter(path, kernels):
    """A 1-thread interpreter on ``kernels``; builtin = no default (XNNPACK) delegate."""
    module = interpreter_module()
    kwargs = {"num_threads": 1}
    if kernels == "builtin":
        kwargs["experimental_op_resolver_type"] = \
            module.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    result = module.Interpreter(model_path=path, **kwargs)
    result.allocate_tensors()
    return result


def run_frames(path, frames, kernels):
    return _frames_through(interpreter(path, kernels), frames)


def run_frames_onnx(path, frames):
    """The frames through edge.backends.onnxruntime (the product backend, CPU provider)."""
    from edge import backends

    return _frames_through(backends.create("onnxruntime").load(path, threads=1), frames)


def _frames_through(model, frames):
    """Each frame's outputs from a loaded model (LiteRT's interpreter API), flattened and
    concatenated in output-name order: (N, total values)."""
    inp = model.get_input_details()[0]
    outs = _named(signature_indices(model)["outputs"], model.get_output_details())
    rows = []
    for image in frames:
        model.set_tensor(inp["index"], image[None].astype(inp["dtype"]))
        model.invoke()
        rows.append(np.concatenate([model.get_tensor(outs[name])[0].reshape(-1)
                                    for name in sorted(outs)]))
    return np.stack(rows)


def _named(named, details):
    return named or {d["name"]: d["index"] for d in details}


def run_heads(path, windows, kernels):
    """{output name: W x ...} for the W windows ``windows`` ({head input name: W x ...}),
    the head's state reset per window."""
    model = interpreter(path, kernels)
    sig = signature_indices(model)
    ins = _named(sig["inputs"], model.get_input_details())
    outs = _named(sig["outputs"], model.get_output_details())
    dtypes = {d["index"]: d["dtype"] for d in model.get_input_details()}
    count = len(next(iter(windows.values())))
    values = {}
    for w in range(count):
        model.reset_all_variables()
        for name, index in ins.items():
            model.set_tensor(index, windows[name][w][None].astype(dtypes[index]))
        model.invoke()
        for name, index in outs.items():
            values.setdefault(name, []).append(model.get_tensor(index)[0].copy())
    return {k: np.stack(v) for k, v in values.items()}


def decode(video):
    """Every frame OpenCV decodes from the file here (BGR)."""
    cap = cv2.VideoCapture(video)
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    return np.stack(frames)


def run_stream(model_dir, frames):
    """The product path: StreamingRunner (LiteRT's default kernels) over BGR frames."""
    runner = StreamingRunner(model_dir, threads=1, source_order="BGR")
    windows = {}
    for frame in frames:
        for window in runner.process(np.ascontiguousarray(frame)):
            for name, task in window.tasks.items():
                windows.setdefault(name, []).append(task.values.copy())
    return {k: np.stack(v) for k, v in windows.items()}


def main(argv):
    with open(argv[0]) as handle:
        job = json.load(handle)
    inputs = np.load(job["inputs"])
    model_dir = job["model_dir"]
    parts = job.get("parts") or ["frame", "head", "stream"]
    result = {"decoded": decode(job["video"])}
    for kernels in KERNELS:
        if "frame" in parts:
            result["frame/" + kernels] = run_frames(os.path.join(model_dir, "frame.tflite"),
                                                    inputs["frames"], kernels)
        if "head" in parts:
            windows = {key[len("head:"):]: inputs[key] for key in inputs.files
                       if key.startswith("head:")}
            for name, value in run_heads(os.path.join(model_dir, "head.tflite"),
                                         windows, kernels).items():
                result["head/%s/%s" % (kernels, name)] = value
    if "onnx" in parts:
        result["frame/onnxruntime"] = run_frames_onnx(os.path.join(model_dir, "frame.onnx"),
                                                      inputs["frames"])
    if "stream" in parts:
        # the video as decoded here (the camera's path) and the x86-decoded frames (the runner)
        x86_bgr = inputs["frames"][..., ::-1]
        for source, frames in (("video", result["decoded"]), ("frames", x86_bgr)):
            for name, value in run_stream(model_dir, frames).items():
                result["stream-%s/%s" % (source, name)] = value
    np.savez(job["out"], **result)
    module = interpreter_module()
    info = {"machine": platform.machine(), "python": platform.python_version(),
            "numpy": np.__version__, "opencv": cv2.__version__, "interpreter": module.__name__}
    if "onnx" in parts:
        import onnxruntime
        info["onnxruntime"] = onnxruntime.__version__
    print(json.dumps(info))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
