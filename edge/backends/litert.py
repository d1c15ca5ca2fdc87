"""LiteRT on the CPU (XNNPACK), and the LiteRT loading every LiteRT-based backend shares.

The camera has whichever interpreter package its platform ships: ``ai_edge_litert`` (current),
``tflite_runtime`` (older Coral/Jetson images), or, as a last resort on a workstation, the copy
inside TensorFlow. They share one API, so nothing else in edge/ asks which one it got.

Every failure a user can cause (missing file, not a TFLite file, truncated file, missing delegate
library) is an :class:`EdgekitError`; the model is validated before the native loader sees it,
because a corrupt flatbuffer can crash the native code instead of raising.

Subclasses (the Edge TPU, the GPU delegate, any delegate library) only say which delegate to load
(:meth:`LiteRTBackend.delegates`); loading, threads and errors are the same for all.
"""

import ctypes
import os
import struct

from edge.backends.base import Backend, Option
from edge.errors import EdgekitError

TFLITE_IDENTIFIER = b"TFL3"
KERNELS = ("xnnpack", "builtin")


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
        self.__name__ = "tensorflow.lite"
        self.Interpreter = module.Interpreter
        self.load_delegate = module.experimental.load_delegate
        self.OpResolverType = getattr(module.experimental, "OpResolverType", None)


def check_model_file(model_path):
    """Validate ``model_path`` as a TFLite flatbuffer well enough that the native loader is safe.

    Checks: the file exists, carries the ``TFL3`` identifier, and its root table offset lies
    inside the file. A truncated file fails here or in the interpreter's own verifier, either way
    as an EdgekitError.
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


def probe_library(library, what):
    """None if the shared library loads, else why not (with what to install)."""
    if not library:
        return "no %s library is known for this platform; give its path" % what
    try:
        ctypes.CDLL(library)
    except OSError as exc:
        return "cannot load delegate %s (%s): install %s" % (library, first_line(exc), what)
    return None


def load_delegate(module, library, options, what):
    # Probe with ctypes first: a failed load_delegate leaves a half-built Delegate whose __del__
    # prints an "Exception ignored" traceback, which a CLI user must not see.
    problem = probe_library(library, what)
    if problem is not None:
        raise EdgekitError(problem)
    try:
        return module.load_delegate(library, dict(options or {}))
    except (ValueError, OSError, RuntimeError) as exc:
        raise EdgekitError("cannot load delegate %s (%s): install %s"
                           % (library, first_line(exc), what))


def first_line(exc):
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def hold_views(interpreter):
    """Let numpy views of ``interpreter``'s tensors live across ``invoke()``, as the bound
    buffers of the ONNX Runtime and TensorRT interpreters do (:mod:`edge.backends.base`).

    LiteRT's Python ``invoke()`` refuses to run while any view from ``tensor(i)()`` is alive,
    because ``allocate_tensors()`` or a resize would move the buffers under it. Nothing in edge/
    does either after load (the models have fixed shapes, allocated once here), and between
    invokes of an allocated interpreter a tensor's buffer stays where it is (tests/
    test_edge_backends.py checks every model's held views against ``get_tensor`` over many
    invokes). So the checked ``invoke()`` is replaced, on this interpreter only, by the native
    call it ends in (which releases the GIL as before), and the session takes each tensor's view
    once: on the B3 swim model that saves 12 view calls per frame, each a cold Python-to-C call
    right after the frame invoke, and lets the conversions between tensors be bound once (README,
    "The runner's overhead on a faster CPU": with both, 7.9 % -> 5.8 % overhead per frame).
    ``allocate_tensors()`` and ``resize_tensor_input()`` keep their check, so they still refuse
    while views are held.
    """
    native = getattr(getattr(interpreter, "_interpreter", None), "Invoke", None)
    if native is None:
        raise EdgekitError("this TFLite interpreter (%s) has no native Invoke behind its Python "
                           "API, which edgekit needs; install ai-edge-litert (pip install "
                           "ai-edge-litert)" % type(interpreter).__module__)
    interpreter.invoke = native
    return interpreter


def head_kernels():
    """The CPU kernels the head runs on: XNNPACK, except where its XNNPACK is known wrong.

    ai-edge-litert 2.1.0 (the last wheel for Python 3.9 on aarch64, so what Debian 11 and
    JetPack 5 boards get) computes the int8 head wrongly with XNNPACK, on x86 as on ARM: against
    its own built-in kernels the outputs differ by up to 0.40 (tiny test head) and 0.14
    (EfficientNet-B3 head), where 2.3.0 differs by 0.023 and 0.0, and its top class matched the
    built-in kernels' in 4 of 17 windows (measured on random int8 inputs and on the emulated
    bullseye board). Its frame models agree with 2.3.0, so only the head moves to the built-in
    kernels there. On the head ``edgekit quantize`` writes now (int8 weights, float activations)
    2.1.0's XNNPACK equals 2.3.0's bit for bit (EfficientNet-B3 head, random inputs, x86): the
    fallback is kept, for older directories' int8 heads, and not yet narrowed to them.
    """
    try:
        from importlib import metadata
        version = metadata.version("ai-edge-litert")
    except Exception:  # noqa: BLE001 - not installed, or metadata unreadable: no known defect
        return "xnnpack"
    parts = tuple(int(p) for p in version.split(".")[:2] if p.isdigit())
    return "builtin" if len(parts) == 2 and parts < (2, 3) else "xnnpack"


class LiteRTBackend(Backend):
    """LiteRT's CPU kernels: XNNPACK by default (LiteRT's own default delegate), or the plain
    built-in kernels (``kernels = "builtin"``, ``--device cpu:builtin``); ``threads`` sets the
    pool."""

    key = "litert"
    summary = "LiteRT on the CPU (XNNPACK, or kernels = builtin)"
    options = {"kernels": Option("str", "xnnpack | builtin", "xnnpack|builtin")}

    @classmethod
    def parse_option(cls, text):
        if "kernels" not in cls.options:  # a delegate backend built on this one
            return super().parse_option(text)
        if text not in KERNELS:
            raise EdgekitError("device cpu:%s is unknown; use cpu, cpu:xnnpack or cpu:builtin"
                               % text)
        return {"kernels": text}

    def resolver(self, module):
        """Interpreter keyword arguments for the chosen kernels."""
        if self.config.get("kernels") != "builtin":
            return {}
        resolver = getattr(getattr(module, "OpResolverType", None),
                           "BUILTIN_WITHOUT_DEFAULT_DELEGATES", None)
        if resolver is None:
            raise EdgekitError("this interpreter cannot turn XNNPACK off (no OpResolverType); "
                               "use kernels = xnnpack or install ai-edge-litert")
        return {"experimental_op_resolver_type": resolver}

    def delegates(self, module, path):
        """Delegates to hand the interpreter for ``path`` (none: XNNPACK is LiteRT's default)."""
        return []

    def probe(self):
        try:
            interpreter_module()
        except EdgekitError as exc:
            return str(exc)
        return None

    def load(self, path, threads=None):
        path = check_model_file(path)
        if threads is not None and int(threads) < 1:
            raise EdgekitError("--threads must be >= 1 (got %s)" % threads)
        module = interpreter_module()
        delegates = self.delegates(module, path)
        try:
            interpreter = module.Interpreter(model_path=path,
                                             experimental_delegates=delegates or None,
                                             num_threads=int(threads) if threads else None,
                                             **self.resolver(module))
            interpreter.allocate_tensors()
            hold_views(interpreter)
        except (ValueError, RuntimeError) as exc:
            if "Didn't find op for builtin opcode" in str(exc):
                # e.g. tflite-runtime 2.13 and the head's int8-weight FULLY_CONNECTED version 12
                raise EdgekitError("cannot load %s: %s; the model needs a newer interpreter than "
                                   "%s: install ai-edge-litert (pip install ai-edge-litert)"
                                   % (path, first_line(exc), module.__name__))
            raise EdgekitError("cannot load %s: %s; the file is corrupt or truncated, or needs "
                               "ops this interpreter lacks; copy it again or re-run edgekit "
                               "quantize" % (path, first_line(exc)))
        return interpreter


BACKEND = LiteRTBackend
