"""One factory for TFLite interpreters on every target: ``make_interpreter``.

The camera has whichever interpreter package its platform ships: ``ai_edge_litert`` (current),
``tflite_runtime`` (older Coral/Jetson images), or, as a last resort on a workstation, the copy
inside TensorFlow. They share one API, so the rest of edge/ never asks which one it got.

Targets (``device``):

- ``cpu``: the built-in kernels; LiteRT applies XNNPACK by default, ``threads`` sets its pool.
- ``edgetpu`` / ``coral`` (optionally ``:usb``, ``:pci``, ``:N``): the libedgetpu delegate. The
  model must be compiled by edgetpu_compiler (``*_edgetpu.tflite``); a plain int8 model would run
  silently on the CPU, which is never what the user meant, so it is refused.
- ``gpu``: the GPU delegate library (``delegate`` may give its path).
- any ``device`` with ``delegate=PATH``: an external delegate library loaded by path.

Every failure a user can cause (missing file, not a TFLite file, truncated file, missing delegate
library) is an :class:`EdgekitError`; the model is validated before the native loader sees it,
because a corrupt flatbuffer can crash the native code instead of raising.
"""

import ctypes
import os
import platform
import struct

from edge.errors import EdgekitError

EDGETPU_LIBRARY = {
    "Linux": "libedgetpu.so.1",
    "Darwin": "libedgetpu.1.dylib",
    "Windows": "edgetpu.dll",
}
GPU_LIBRARY = {
    "Linux": "libtensorflowlite_gpu_delegate.so",
    "Darwin": "libtensorflowlite_gpu_delegate.dylib",
    "Windows": "tensorflowlite_gpu_delegate.dll",
}
TFLITE_IDENTIFIER = b"TFL3"


def interpreter_module():
    """The interpreter module: ai_edge_litert, else tflite_runtime, else tensorflow.lite.

    TensorFlow is imported only when neither device package is installed (a workstation);
    edge/ never imports it otherwise.
    """
    try:
        from ai_edge_litert import interpreter as module
        return module
    except ImportError:
        pass
    try:
        from tflite_runtime import interpreter as module
        return module
    except ImportError:
        pass
    try:
        import tensorflow.lite as module  # last resort, documented above
        return _TensorFlowLiteShim(module)
    except ImportError:
        raise EdgekitError("no TFLite interpreter is installed; install one with: pip install "
                           "ai-edge-litert (or tflite-runtime on older boards)")


class _TensorFlowLiteShim(object):
    """tensorflow.lite spells load_delegate under ``experimental``; present the common API."""

    def __init__(self, module):
        self.Interpreter = module.Interpreter
        self.load_delegate = module.experimental.load_delegate


def check_model_file(model_path):
    """Validate ``model_path`` as a TFLite flatbuffer well enough that the native loader is safe.

    Checks: the file exists, carries the ``TFL3`` identifier, and its root table offset and
    vtable lie inside the file. A truncated file fails the size checks in ``parse_offsets`` or the
    interpreter's own verifier, either way as an EdgekitError.
    """
    path = os.fspath(model_path)
    if not os.path.isfile(path):
        raise EdgekitError("model file %s does not exist; check --model or re-run edgekit "
                           "quantize" % path)
    size = os.path.getsize(path)
    with open(path, "rb") as handle:
        head = handle.read(8)
    if size < 16 or head[4:8] != TFLITE_IDENTIFIER:
        raise EdgekitError("%s is not a TFLite model (no TFL3 identifier); the file is corrupt or "
                           "of another format, re-run edgekit quantize" % path)
    root = struct.unpack("<I", head[:4])[0]
    if root + 4 > size:
        raise EdgekitError("%s is truncated (its root table lies beyond the end of the %d-byte "
                           "file); copy the model again" % (path, size))
    return path


def parse_device(device):
    """``device`` string -> (kind, option); kind in cpu|edgetpu|gpu, option e.g. 'usb', ':0'."""
    text = (device or "cpu").strip().lower()
    kind, _, option = text.partition(":")
    if kind == "coral":
        kind = "edgetpu"
    if kind not in ("cpu", "edgetpu", "gpu"):
        raise EdgekitError("unknown device %r; use cpu, gpu, edgetpu, edgetpu:usb, edgetpu:pci or "
                           "edgetpu:N" % device)
    if kind == "edgetpu" and option:
        option = option if option in ("usb", "pci") or option.startswith("usb:") \
            or option.startswith("pci:") else ":" + option
        if option.startswith(":") and not option[1:].isdigit():
            raise EdgekitError("bad Coral device %r; use edgetpu:usb, edgetpu:pci or edgetpu:N "
                               "(N = index)" % device)
    return kind, option


def make_interpreter(model_path, device="cpu", delegate=None, threads=None,
                     delegate_options=None):
    """An allocated interpreter for ``model_path`` on ``device``.

    ``delegate`` is the path of an external delegate library (overrides the default library of
    ``device``); ``delegate_options`` are passed to it. ``threads`` sets the CPU thread count
    (None: the interpreter's default).
    """
    path = check_model_file(model_path)
    kind, option = parse_device(device)
    module = interpreter_module()
    delegates = []
    system = platform.system()
    if kind == "edgetpu":
        if not os.path.basename(path).endswith("_edgetpu.tflite"):
            raise EdgekitError("%s is not compiled for the Edge TPU; run edgetpu_compiler on it and "
                               "use the *_edgetpu.tflite it writes (or run with --device cpu)"
                               % path)
        options = dict(delegate_options or {})
        if option:
            options.setdefault("device", option)
        delegates.append(_load_delegate(module, delegate or EDGETPU_LIBRARY.get(system,
                                                                                "libedgetpu.so.1"),
                                        options, "the Edge TPU runtime (libedgetpu); install it "
                                        "from https://coral.ai/software/"))
    elif kind == "gpu":
        delegates.append(_load_delegate(module, delegate or GPU_LIBRARY.get(system, ""),
                                        delegate_options, "the TFLite GPU delegate; pass its path "
                                        "with --delegate"))
    elif delegate:
        delegates.append(_load_delegate(module, delegate, delegate_options,
                                        "the delegate library at that path"))
    if threads is not None and int(threads) < 1:
        raise EdgekitError("--threads must be >= 1 (got %s)" % threads)
    try:
        interpreter = module.Interpreter(model_path=path, experimental_delegates=delegates or None,
                                         num_threads=int(threads) if threads else None)
        interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as exc:
        raise EdgekitError("cannot load %s: %s; the file is corrupt or truncated, or needs ops "
                           "this interpreter lacks; copy it again or re-run edgekit quantize"
                           % (path, _first_line(exc)))
    return interpreter


def _load_delegate(module, library, options, what):
    # Probe with ctypes first: a failed load_delegate leaves a half-built Delegate whose __del__
    # prints an "Exception ignored" traceback, which a CLI user must not see.
    try:
        ctypes.CDLL(library)
    except OSError as exc:
        raise EdgekitError("cannot load delegate %s (%s): install %s"
                           % (library, _first_line(exc), what))
    try:
        return module.load_delegate(library, dict(options or {}))
    except (ValueError, OSError, RuntimeError) as exc:
        raise EdgekitError("cannot load delegate %s (%s): install %s"
                           % (library, _first_line(exc), what))


def _first_line(exc):
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
