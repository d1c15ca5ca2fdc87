"""ONNX Runtime: the ONNX frame model (``edgekit export``) on the CPU, or on CUDA / TensorRT
through ONNX Runtime's execution providers where the installed build has them.

Why a second runtime for the same model: ONNX Runtime is what runs on targets where LiteRT's
accelerators do not (a Jetson's or a PC's NVIDIA GPU through its CUDA/TensorRT providers), and its
CPU provider is a second, independent int8 implementation to check frame.tflite against.
``onnxruntime`` is imported when the backend is probed or loads, not with the module: where it is
not installed, ``edgekit devices check`` still lists the backend, unavailable, with what to
install, and every other backend keeps working.

Variants: ``precision = "int8"`` (default) runs the manifest's ``onnx`` variant, the QDQ graph
tf2onnx made from frame.tflite (same uint8 pixels in, same int8 features out, same scales);
``precision = "fp32"`` runs ``onnx_fp32``, the same weights with float activations and float32
I/O (what a GPU runs at fp16/fp32); ``precision = "trt_int8"`` runs ``onnx_trt_int8``, the graph
the TensorRT backend builds its int8 engine from (symmetric QDQ, float32 I/O), so it is checked
here on the CPU.

The interpreter adapter (:class:`OnnxInterpreter`) gives the part of LiteRT's ``Interpreter`` API
the model session uses. Inputs and outputs are numpy arrays allocated once at load and bound to
the session with IOBinding (``bind_input``/``bind_output`` on their memory), so ``invoke()``
allocates nothing per frame and ``tensor(i)()`` is a writable view of the very buffer ONNX Runtime
reads (as LiteRT's ``tensor()`` is). ``threads`` sets ONNX Runtime's intra-op pool; the inter-op
pool is 1 (a frame model is one chain of ops).

On a CPU it is not the fast path, measured (benchmarks/bench_onnx.py, 2 threads, ORT 1.32.0): the
EfficientNet-B3 int8 frame model takes 120 ms median where LiteRT/XNNPACK takes 11.9 ms. ORT
fuses 18 of its 124 convolutions into QLinearConv and runs the rest as float Conv between
DequantizeLinear/QuantizeLinear (52 % and 27 % of the time, profiled); fusing all of them
(``session.qdqisint8allowed``) is no faster, its int8 QLinearConv taking the time instead.

On an x86-64 CPU without VNNI (AVX2 or AVX-512 alone), ONNX Runtime's int8 CPU kernels can give
wrong results: they multiply uint8 activations by int8 weights with VPMADDUBSW, which adds pairs
of products into a saturating int16 (ONNX Runtime issues 6004, 14642; its fix, the session
option ``session.x64quantprecision``, failed to load frame.onnx in ORT 1.32 here). Measured on
such a machine (an AMD EPYC VM exposing AVX2 only): the QAT tiny frame model came out up to 56
int8 steps (mean 10) off frame.tflite, where LiteRT's built-in kernels and XNNPACK agree within
2; the Intel Xeon of earlier runs gave 0 (its VNNI flag was not recorded).
:func:`int8_may_saturate` tells such a CPU, and the CPU provider warns when it loads an int8
variant there. ARM CPUs are not affected.
"""

import logging
import os
import platform

import numpy as np

from edge.backends.base import Backend, Option
from edge.errors import EdgekitError
from edge.onnx_model import EXPORT_HINT, metadata_quantization

PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider",
             "tensorrt": "TensorrtExecutionProvider"}
VARIANTS = {"int8": "onnx", "fp32": "onnx_fp32", "trt_int8": "onnx_trt_int8"}
INSTALL = "pip install 'edgekit[onnx]' (or pip install onnxruntime; onnxruntime-gpu for CUDA)"
ORT_TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16,
             "tensor(uint8)": np.uint8, "tensor(int8)": np.int8, "tensor(int16)": np.int16,
             "tensor(int32)": np.int32, "tensor(int64)": np.int64, "tensor(bool)": np.bool_}


log = logging.getLogger("edgekit.backends.onnxruntime")
VNNI_FLAGS = frozenset(("avx512_vnni", "avx_vnni"))
_warned = []


def int8_may_saturate(cpuinfo="/proc/cpuinfo", machine=None):
    """True on an x86-64 CPU without VNNI, where ONNX Runtime's int8 kernels can saturate (see
    the module docstring); False elsewhere, or when the CPU flags cannot be read."""
    if (machine or platform.machine()).lower() not in ("x86_64", "amd64"):
        return False
    try:
        with open(cpuinfo, "r") as handle:
            for line in handle:
                if line.startswith("flags"):
                    return not (VNNI_FLAGS & set(line.split(":", 1)[1].split()))
    except OSError:
        pass
    return False


def runtime():
    """The ``onnxruntime`` module, or an EdgekitError saying how to install it."""
    try:
        import onnxruntime
    except ImportError as exc:
        raise EdgekitError("onnxruntime is not installed here (%s); install it with: %s"
                           % (exc, INSTALL))
    return onnxruntime


class _SignatureRunner(object):
    """``get_signature_runner()``'s shape: details keyed by name."""

    def __init__(self, interpreter):
        self._interpreter = interpreter

    def get_input_details(self):
        return {d["name"]: d for d in self._interpreter.get_input_details()}

    def get_output_details(self):
        return {d["name"]: d for d in self._interpreter.get_output_details()}


class OnnxInterpreter(object):
    """An ONNX Runtime session in the shape of LiteRT's Interpreter (see the module docstring).

    Tensor indices: inputs 0..n-1 in graph order, then the outputs.
    """

    def __init__(self, session, path):
        self.session = session
        self.path = path
        quantization = metadata_quantization(session.get_modelmeta().custom_metadata_map)
        self._details, self._buffers = [], []
        self._binding = session.io_binding()
        args = [(a, True) for a in session.get_inputs()] + \
            [(a, False) for a in session.get_outputs()]
        for index, (arg, is_input) in enumerate(args):
            dtype = ORT_TYPES.get(arg.type)
            shape = arg.shape
            if dtype is None or not all(isinstance(d, int) and d > 0 for d in shape):
                raise EdgekitError("ONNX model %s: %s %s is %s %s; edgekit runs fixed-shape "
                                   "tensors of %s only; %s" % (path, "input" if is_input else
                                                               "output", arg.name, arg.type,
                                                               shape, ", ".join(ORT_TYPES),
                                                               EXPORT_HINT))
            buffer = np.zeros(shape, dtype)
            bind = self._binding.bind_input if is_input else self._binding.bind_output
            bind(arg.name, "cpu", 0, dtype, list(shape), buffer.ctypes.data)
            self._buffers.append(buffer)
            self._details.append(_detail(arg.name, index, buffer, quantization.get(arg.name)))
        self._inputs = self._details[:len(session.get_inputs())]
        self._outputs = self._details[len(session.get_inputs()):]

    def get_input_details(self):
        return [dict(d) for d in self._inputs]

    def get_output_details(self):
        return [dict(d) for d in self._outputs]

    def get_signature_list(self):
        return {"serving_default": {"inputs": [d["name"] for d in self._inputs],
                                    "outputs": [d["name"] for d in self._outputs]}}

    def get_signature_runner(self, key="serving_default"):
        if key != "serving_default":
            raise ValueError("ONNX models have one signature, serving_default")
        return _SignatureRunner(self)

    def tensor(self, index):
        buffer = self._buffers[index]
        return lambda: buffer

    def get_tensor(self, index):
        return self._buffers[index].copy()

    def set_tensor(self, index, value):
        np.copyto(self._buffers[index], value, casting="no")

    def invoke(self):
        self.session.run_with_iobinding(self._binding)

    def reset_all_variables(self):
        """Nothing to reset: an ONNX frame model holds no state between runs."""

    def allocate_tensors(self):
        """Buffers are allocated and bound at load."""


def _detail(name, index, buffer, quantization):
    scale, zero_point = quantization or (0.0, 0)
    return {"name": name, "index": index, "shape": np.array(buffer.shape, np.int32),
            "shape_signature": np.array(buffer.shape, np.int32), "dtype": buffer.dtype.type,
            "quantization": (scale, zero_point),
            "quantization_parameters": {
                "scales": np.array([scale] if quantization else [], np.float32),
                "zero_points": np.array([zero_point] if quantization else [], np.int32),
                "quantized_dimension": 0},
            "sparsity_parameters": {}}


def first_line(exc):
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


class OnnxRuntimeBackend(Backend):
    key = "onnxruntime"
    summary = "ONNX Runtime (CPU; CUDA/TensorRT providers where installed); runs the ONNX export"
    placement_label = "ONNXRuntime"
    options = {
        "provider": Option("str", "cpu | cuda | tensorrt", r"cpu|cuda|tensorrt"),
        "precision": Option("str", "int8 (variant onnx) | fp32 (variant onnx_fp32) | trt_int8 "
                            "(variant onnx_trt_int8, TensorRT's form, to check it)",
                            r"int8|fp32|trt_int8"),
    }

    @classmethod
    def parse_option(cls, text):
        if text in PROVIDERS:
            return {"provider": text}
        if text in VARIANTS:
            return {"precision": text}
        raise EdgekitError("bad device 'onnxruntime:%s'; use onnxruntime:cpu, onnxruntime:cuda, "
                           "onnxruntime:tensorrt, or onnxruntime:int8 / :fp32 / :trt_int8" % text)

    # the default precision's variant; an instance has its own precision's (see __init__)
    variant = "onnx"

    def __init__(self, **options):
        super().__init__(**options)
        # an instance attribute, so the class attribute stays a plain string for callers that
        # ask the class (edge.devices.Device.variant)
        self.variant = VARIANTS[self.config.get("precision", "int8")]

    @property
    def provider(self):
        return PROVIDERS[self.config.get("provider", "cpu")]

    def probe(self):
        try:
            onnxruntime = runtime()
        except EdgekitError as exc:
            return str(exc)
        available = onnxruntime.get_available_providers()
        if self.provider not in available:
            return ("onnxruntime %s has no %s here (it has: %s); install onnxruntime-gpu (CUDA) "
                    "or use provider cpu" % (onnxruntime.__version__, self.provider,
                                             ", ".join(available)))
        return None

    def session_options(self, threads):
        onnxruntime = runtime()
        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        options.inter_op_num_threads = 1
        if threads:
            options.intra_op_num_threads = int(threads)
        options.log_severity_level = 3  # errors only: warnings about unused providers are noise
        return options

    def providers(self, path):
        """The provider list for ONNX Runtime: the chosen one first, the CPU after it.

        TensorRT's provider takes the fp32 or trt_int8 variants (its Q/DQ layers are symmetric:
        on the asymmetric ``onnx`` variant it would leave the quantized nodes to the CPU)."""
        if self.provider == PROVIDERS["tensorrt"]:
            cache = os.path.join(os.path.dirname(os.path.abspath(path)), ".ort_trt_cache")
            options = {"trt_engine_cache_enable": True, "trt_engine_cache_path": cache,
                       "trt_fp16_enable": True,
                       "trt_int8_enable": self.variant == VARIANTS["trt_int8"]}
            return [(self.provider, options), PROVIDERS["cpu"]]
        if self.provider == PROVIDERS["cuda"]:
            return [self.provider, PROVIDERS["cpu"]]
        return [self.provider]

    def load(self, path, threads=None):
        path = os.fspath(path)
        if threads is not None and int(threads) < 1:
            raise EdgekitError("--threads must be >= 1 (got %s)" % threads)
        problem = self.probe()
        if problem:
            raise EdgekitError(problem)
        if not os.path.isfile(path):
            raise EdgekitError("ONNX model %s does not exist; %s" % (path, EXPORT_HINT))
        try:
            session = runtime().InferenceSession(path, self.session_options(threads),
                                                   providers=self.providers(path))
        except Exception as exc:  # ORT's pybind errors (InvalidProtobuf, Fail, ...) share no base
            raise EdgekitError("cannot load %s with onnxruntime: %s; the file is corrupt or "
                               "truncated, copy it again or %s" % (path, first_line(exc),
                                                                   EXPORT_HINT))
        if session.get_providers()[0] != self.provider:
            raise EdgekitError("onnxruntime did not start %s for %s (it runs on %s); check the "
                               "GPU driver and CUDA libraries, or use provider cpu"
                               % (self.provider, path, ", ".join(session.get_providers())))
        if (self.provider == PROVIDERS["cpu"] and self.variant != VARIANTS["fp32"]
                and not _warned and int8_may_saturate()):
            _warned.append(path)
            log.warning("this x86 CPU has no VNNI: ONNX Runtime's int8 kernels can saturate on "
                        "it and give wrong results for %s; check them against frame.tflite "
                        "(edgekit bench), or use the LiteRT backend (--device cpu)", path)
        return OnnxInterpreter(session, path)

    def placement(self, interpreter):
        """ONNX Runtime does not report per-node placement to Python: the providers in use."""
        return {"available": False, "nodes": None, "delegated": None, "cpu": None,
                "delegate": "+".join(interpreter.session.get_providers()), "partitions": 0,
                "ops_cpu": {}, "ops_delegated": {}}


BACKEND = OnnxRuntimeBackend
