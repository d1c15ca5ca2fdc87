"""The parts of the TensorRT backend that need TensorRT and CUDA: the GPU query, the engine
builder (Python API) and the interpreter adapter. Imported only by :mod:`edge.backends.tensorrt`
when it probes or loads (the leading underscore keeps the registry from taking it for a backend).

NOT YET RUN ON HARDWARE (no machine of this project has TensorRT); written against the
named-tensor API of TensorRT 8.5+ (``num_io_tensors``, ``set_tensor_address``,
``execute_async_v3``) and cuda-python's runtime bindings, tested where they are importable.

The adapter keeps one host buffer (numpy) and one device buffer per I/O tensor, allocated at load,
and one CUDA stream: ``invoke()`` copies the inputs up, enqueues the engine, copies the outputs
down and waits, with no per-frame allocation, the same contract as LiteRT's ``invoke()``.
"""

import numpy as np

from edge.errors import EdgekitError


def cudart():
    """cuda-python's runtime module (its 12.x name first), or an EdgekitError with the fix."""
    try:
        from cuda.bindings import runtime as module
        return module
    except ImportError:
        pass
    try:
        from cuda import cudart as module
        return module
    except ImportError as exc:
        raise EdgekitError("the tensorrt backend needs cuda-python for GPU memory (%s); install "
                           "it with: pip install cuda-python" % exc)


def _check(result, what):
    """cuda-python returns (error, values...): raise on an error, return the values."""
    error, values = result[0], result[1:]
    if int(error) != 0:
        raise EdgekitError("CUDA %s failed: %s" % (what, error))
    return values[0] if len(values) == 1 else values


def gpu(index=0):
    """(name, "major.minor") of CUDA device ``index``; EdgekitError when there is none."""
    cuda = cudart()
    error, count = cuda.cudaGetDeviceCount()
    if int(error) != 0 or count < 1:
        raise EdgekitError("no CUDA GPU is visible here (CUDA: %s; driver loaded? "
                           "CUDA_VISIBLE_DEVICES?); use a LiteRT backend on this target"
                           % (error if int(error) else "0 devices"))
    if not 0 <= int(index) < count:
        raise EdgekitError("GPU %d does not exist here: %d GPU(s), indices 0..%d"
                           % (index, count, count - 1))
    props = _check(cuda.cudaGetDeviceProperties(int(index)), "device properties")
    name = props.name.decode(errors="replace") if isinstance(props.name, bytes) else props.name
    return name.strip("\0 "), "%d.%d" % (props.major, props.minor)


def build_engine(trt, onnx_path, precision, workspace_mb=None):
    """A serialized engine (bytes) for ``onnx_path``; int8 only from the graph's Q/DQ scales."""
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    major = int(trt.__version__.split(".")[0])
    flags = 0 if major >= 10 else 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    with open(onnx_path, "rb") as handle:
        parsed = parser.parse(handle.read())
    if not parsed:
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        raise EdgekitError("TensorRT %s cannot parse %s: %s; re-run edgekit export (opset 17) "
                           "or report the TensorRT version" % (trt.__version__, onnx_path,
                                                               errors[0] if errors else "?"))
    config = builder.create_builder_config()
    if workspace_mb:
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_mb) << 20)
    if precision in ("fp16", "int8"):
        if not getattr(builder, "platform_has_fast_fp16", True):
            raise EdgekitError("this GPU has no fast fp16; use backend option precision = "
                               "\"fp32\"")
        config.set_flag(trt.BuilderFlag.FP16)
    if precision == "int8":
        config.set_flag(trt.BuilderFlag.INT8)  # explicit Q/DQ: no calibrator is ever set
    blob = builder.build_serialized_network(network, config)
    if blob is None:
        raise EdgekitError("TensorRT %s could not build a %s engine from %s (see its log above)"
                           % (trt.__version__, precision, onnx_path))
    return bytes(blob)


class TensorRTInterpreter(object):
    """A deserialized engine in the shape of LiteRT's Interpreter (see edge/backends/base.py).

    Tensor indices: the engine's I/O tensors in its order, inputs first.
    """

    def __init__(self, engine_path, device=0):
        from edge.backends.tensorrt import runtime

        trt = runtime()
        self._cuda = cuda = cudart()
        _check(cuda.cudaSetDevice(int(device)), "set device")
        with open(engine_path, "rb") as handle:
            blob = handle.read()
        self._runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self.engine = self._runtime.deserialize_cuda_engine(blob)
        if self.engine is None:
            raise EdgekitError("TensorRT %s cannot load engine %s: it was built by another "
                               "TensorRT version or for another GPU; delete it and its .json, it "
                               "is rebuilt on the next run" % (trt.__version__, engine_path))
        self.context = self.engine.create_execution_context()
        self._stream = _check(cuda.cudaStreamCreate(), "stream")
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        inputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        outputs = [n for n in names if n not in inputs]
        self._host, self._device, self._details = [], [], []
        for index, name in enumerate(inputs + outputs):
            shape = tuple(int(d) for d in self.engine.get_tensor_shape(name))
            host = np.zeros(shape, trt.nptype(self.engine.get_tensor_dtype(name)))
            device_ptr = _check(cuda.cudaMalloc(max(host.nbytes, 1)), "malloc")
            self.context.set_tensor_address(name, int(device_ptr))
            self._host.append(host)
            self._device.append(device_ptr)
            self._details.append({
                "name": name, "index": index, "shape": np.array(shape, np.int32),
                "shape_signature": np.array(shape, np.int32), "dtype": host.dtype.type,
                "quantization": (0.0, 0), "sparsity_parameters": {},
                "quantization_parameters": {"scales": np.array([], np.float32),
                                            "zero_points": np.array([], np.int32),
                                            "quantized_dimension": 0}})
        self._inputs = list(range(len(inputs)))
        self._outputs = list(range(len(inputs), len(names)))

    def get_input_details(self):
        return [dict(self._details[i]) for i in self._inputs]

    def get_output_details(self):
        return [dict(self._details[i]) for i in self._outputs]

    def get_signature_list(self):
        return {}  # tensor names are the ONNX names, which are the signature names

    def tensor(self, index):
        host = self._host[index]
        return lambda: host

    def get_tensor(self, index):
        return self._host[index].copy()

    def set_tensor(self, index, value):
        np.copyto(self._host[index], value, casting="no")

    def invoke(self):
        cuda = self._cuda
        up = cuda.cudaMemcpyKind.cudaMemcpyHostToDevice
        down = cuda.cudaMemcpyKind.cudaMemcpyDeviceToHost
        for i in self._inputs:
            _check(cuda.cudaMemcpyAsync(self._device[i], self._host[i].ctypes.data,
                                        self._host[i].nbytes, up, self._stream), "copy in")
        if not self.context.execute_async_v3(self._stream):
            raise EdgekitError("TensorRT could not run the engine")
        for i in self._outputs:
            _check(cuda.cudaMemcpyAsync(self._host[i].ctypes.data, self._device[i],
                                        self._host[i].nbytes, down, self._stream), "copy out")
        _check(cuda.cudaStreamSynchronize(self._stream), "synchronize")

    def reset_all_variables(self):
        """Nothing to reset: the frame engine holds no state between runs."""

    def allocate_tensors(self):
        """Buffers are allocated at load."""

    def __del__(self):
        cuda = getattr(self, "_cuda", None)
        if cuda is None:
            return
        for pointer in getattr(self, "_device", []):
            cuda.cudaFree(pointer)
