"""TensorRT on an NVIDIA GPU (a Jetson's, a PC's): the frame model as an engine built on the
target from the ONNX export. NOT YET MEASURED ON HARDWARE: no machine of this project has
TensorRT; what runs without it (engine-cache keys, engine records, trtexec commands and log
parsing, the ONNX files it reads, run by ONNX Runtime) is tested, the rest only where TensorRT
is importable (tests marked ``hardware``).

Why thin: TensorRT engines are specific to the GPU, the TensorRT version and the precision, so
they cannot be shipped; JetPack installs TensorRT (its Python module and ``trtexec``) on the
board. This backend drives that installation and nothing else:

- **build** on first use, from the manifest's ONNX variant (``edgekit export``): ``precision``
  fp16 (default) or fp32 from ``onnx_fp32``; int8 from ``onnx_trt_int8``, the QDQ graph carrying
  frame.tflite's calibrated/QAT ranges (made symmetric, see :mod:`quantize.onnx_graphs`), built
  with explicit quantization: TensorRT's calibrator is never run behind the user's back.
  ``builder = "python"`` uses the ``tensorrt`` module, ``"trtexec"`` JetPack's trtexec
  (``/usr/src/tensorrt/bin/trtexec`` or on PATH), whose log is parsed for the failure reason;
- **cache** the engine beside the model, ``.engines/<onnx stem>.<key>.engine``, the key naming
  the TensorRT version, the GPU (name and compute capability), the precision and the ONNX file's
  sha256 (:func:`engine_key`), with a JSON record that is checked before the engine is
  deserialized (:func:`check_engine_record`): an engine copied from another board or left by
  another TensorRT is refused with what to do, never half-loaded;
- **run** it (:class:`edge.backends._tensorrt_runtime.TensorRTInterpreter`: host buffers, device
  buffers, one CUDA stream). The head stays on LiteRT's CPU kernels (small, and measured on no
  GPU yet).

``threads`` does not apply (the GPU runs the model). Needs TensorRT >= 8.5 (the named-tensor API,
JetPack 5.1+) and ``cuda-python`` for memory and streams.
"""

import json
import os
import re
import shutil
import subprocess

from edge.backends.base import Backend, Option
from edge.errors import EdgekitError
from edge.manifest import atomic_write_bytes, atomic_write_text, sha256_file

VARIANTS = {"fp16": "onnx_fp32", "fp32": "onnx_fp32", "int8": "onnx_trt_int8"}
TRTEXEC_PATHS = ("/usr/src/tensorrt/bin/trtexec",)
ENGINE_DIR = ".engines"
INSTALL = ("on a Jetson it comes with JetPack (apt install python3-libnvinfer nvidia-tensorrt); "
           "elsewhere pip install tensorrt")


def runtime():
    """The ``tensorrt`` module, or an EdgekitError saying how to get it."""
    try:
        import tensorrt
    except ImportError as exc:
        raise EdgekitError("TensorRT is not importable here (%s); %s" % (exc, INSTALL))
    return tensorrt


def version_tuple(text):
    return tuple(int(part) for part in re.findall(r"\d+", str(text))[:3])


def engine_key(tensorrt_version, gpu_name, compute_capability, precision, onnx_sha256):
    """The cache key of an engine: what makes two engines interchangeable (pure)."""
    gpu = re.sub(r"[^a-z0-9]+", "-", str(gpu_name).lower()).strip("-") or "gpu"
    return "trt%s-%s-sm%s-%s-%s" % (".".join(str(v) for v in version_tuple(tensorrt_version)),
                                    gpu, str(compute_capability).replace(".", ""), precision,
                                    onnx_sha256[:12])


def engine_paths(onnx_path, key):
    """(engine file, its JSON record) for ``key`` beside the ONNX file."""
    directory = os.path.join(os.path.dirname(os.path.abspath(onnx_path)), ENGINE_DIR)
    stem = os.path.splitext(os.path.basename(onnx_path))[0]
    engine = os.path.join(directory, "%s.%s.engine" % (stem, key))
    return engine, engine + ".json"


def engine_record(tensorrt_version, gpu_name, compute_capability, precision, onnx_sha256):
    return {"tensorrt": str(tensorrt_version), "gpu": str(gpu_name),
            "compute_capability": str(compute_capability), "precision": precision,
            "onnx_sha256": onnx_sha256}


def check_engine_record(record, expected, engine_path):
    """EdgekitError unless the engine at ``engine_path`` was built for ``expected`` (pure)."""
    if not isinstance(record, dict):
        raise EdgekitError("engine record of %s is unreadable; delete %s and its .json (the "
                           "engine is rebuilt on the next run)" % (engine_path, engine_path))
    for what, field in (("TensorRT version", "tensorrt"), ("GPU", "gpu"),
                        ("compute capability", "compute_capability"),
                        ("precision", "precision"), ("ONNX file", "onnx_sha256")):
        if str(record.get(field)) != str(expected[field]):
            raise EdgekitError(
                "engine %s was built for %s %s, but this target has %s %s (TensorRT %s on %s, "
                "sm %s); an engine runs only where it was built: delete it and its .json, it is "
                "rebuilt here on the next run" % (
                    engine_path, what, record.get(field), what, expected[field],
                    expected["tensorrt"], expected["gpu"], expected["compute_capability"]))


def find_trtexec(explicit=None):
    """The trtexec to run: ``explicit``, else JetPack's, else the one on PATH; None if none."""
    if explicit:
        return explicit if os.path.isfile(explicit) else None
    for path in TRTEXEC_PATHS:
        if os.path.isfile(path):
            return path
    return shutil.which("trtexec")


def trtexec_command(trtexec, onnx_path, engine_path, precision, tensorrt_version,
                    workspace_mb=None):
    """The trtexec build command line (pure): ``--skipInference`` from TensorRT 8.6 on (8.5
    spells it ``--buildOnly``); int8 from the graph's Q/DQ scales, with fp16 for the rest."""
    command = [trtexec, "--onnx=%s" % onnx_path, "--saveEngine=%s" % engine_path]
    command.append("--skipInference" if version_tuple(tensorrt_version) >= (8, 6)
                   else "--buildOnly")
    if precision == "fp16":
        command.append("--fp16")
    elif precision == "int8":
        command += ["--int8", "--fp16"]
    if workspace_mb:
        command.append("--memPoolSize=workspace:%dM" % int(workspace_mb))
    return command


_STAT = re.compile(r"(min|max|mean|median|percentile\((\d+)%\))\s*=?\s*([0-9.]+)\s*ms")


def _stats(text):
    values = {}
    for name, percent, number in _STAT.findall(text):
        values["p%s" % percent if percent else name] = float(number)
    return values


def decode_version(number):
    """trtexec's ``[TensorRT v8601]`` / ``[TensorRT v101602]`` -> "8.6.1" / "10.16.2"."""
    number = int(number)
    major, rest = divmod(number, 10000) if number >= 100000 else divmod(number, 1000)
    return "%d.%d.%d" % (major, rest // 100, rest % 100)


def parse_trtexec(text):
    """What edgekit reads from a trtexec log: version, device, pass/fail, first errors, and the
    performance summary (ms statistics of Latency, GPU Compute Time, H2D/D2H, Enqueue Time)."""
    result = {"tensorrt": None, "device": None, "compute_capability": None, "passed": None,
              "errors": [], "throughput_qps": None, "summary": {}}
    for raw in text.splitlines():
        tagged = re.match(r"^\[[^\]]*\]\s*\[([A-Z])\]\s*(.*)$", raw.strip())  # [date] [I] text
        tag, line = (tagged.group(1), tagged.group(2)) if tagged else ("", raw.strip())
        match = re.match(r"&&&& (PASSED|FAILED) TensorRT\.trtexec \[TensorRT v(\d+)\]", line)
        if match:
            result["passed"] = match.group(1) == "PASSED"
            result["tensorrt"] = result["tensorrt"] or decode_version(match.group(2))
        elif tag == "E":
            result["errors"].append(re.sub(r"^\[TRT\]\s*", "", line))
        elif line.startswith("TensorRT version:"):
            result["tensorrt"] = line.split(":", 1)[1].strip()
        elif line.startswith("Selected Device:"):
            result["device"] = line.split(":", 1)[1].strip()
        elif line.startswith("Compute Capability:"):
            result["compute_capability"] = line.split(":", 1)[1].strip()
        elif line.startswith("Throughput:"):
            result["throughput_qps"] = float(re.findall(r"[0-9.]+", line)[0])
        else:
            match = re.match(r"(Latency|GPU Compute Time|H2D Latency|D2H Latency|Enqueue Time|"
                             r"End-to-End Host Latency):\s*(.*)", line)
            if match:
                result["summary"][match.group(1)] = _stats(match.group(2))
    return result


class TensorRTBackend(Backend):
    key = "tensorrt"
    summary = "TensorRT engine built on the target from the ONNX export (NVIDIA GPU, Jetson)"
    placement_label = "TensorRT"
    options = {
        "precision": Option("str", "fp16 | fp32 (variant onnx_fp32) | int8 (variant "
                            "onnx_trt_int8, the QDQ scales)", r"fp16|fp32|int8"),
        "gpu": Option("int", "the CUDA device index, 0.."),
        "builder": Option("str", "python (the tensorrt module) | trtexec", r"python|trtexec"),
        "trtexec": Option("str", "the path of trtexec (default: JetPack's, else on PATH)"),
        "workspace_mb": Option("int", "builder workspace in MiB"),
    }

    @classmethod
    def parse_option(cls, text):
        if text in VARIANTS:
            return {"precision": text}
        if text.isdigit():
            return {"gpu": int(text)}
        raise EdgekitError("bad device 'tensorrt:%s'; use tensorrt:fp16, tensorrt:fp32, "
                           "tensorrt:int8 or tensorrt:N (GPU index)" % text)

    @property
    def precision(self):
        return self.config.get("precision", "fp16")

    # the default precision's variant; an instance has its own precision's (see __init__)
    variant = "onnx_fp32"

    def __init__(self, **options):
        super().__init__(**options)
        # an instance attribute, so the class attribute stays a plain string for callers that
        # ask the class (edge.devices.Device.variant)
        self.variant = VARIANTS[self.config.get("precision", "fp16")]

    def probe(self):
        try:
            from edge.backends import _tensorrt_runtime as tensorrt_runtime
            tensorrt = runtime()
            if version_tuple(tensorrt.__version__) < (8, 5):
                return ("TensorRT %s is too old: edgekit needs 8.5+ (JetPack 5.1+)"
                        % tensorrt.__version__)
            tensorrt_runtime.gpu(self.config.get("gpu", 0))
        except EdgekitError as exc:
            return str(exc)
        return None

    def load(self, path, threads=None):
        from edge.backends import _tensorrt_runtime as tensorrt_runtime

        path = os.fspath(path)
        problem = self.probe()
        if problem:
            raise EdgekitError(problem)
        if not os.path.isfile(path):
            raise EdgekitError("ONNX model %s does not exist; run: edgekit export --model DIR"
                               % path)
        tensorrt = runtime()
        name, capability = tensorrt_runtime.gpu(self.config.get("gpu", 0))
        expected = engine_record(tensorrt.__version__, name, capability, self.precision,
                                 sha256_file(path))
        key = engine_key(tensorrt.__version__, name, capability, self.precision,
                         expected["onnx_sha256"])
        engine_path, record_path = engine_paths(path, key)
        if os.path.isfile(engine_path):
            try:
                with open(record_path, "r", encoding="utf-8") as handle:
                    record = json.load(handle)
            except (OSError, ValueError):
                record = None
            check_engine_record(record, expected, engine_path)
        else:
            self.build(path, engine_path, tensorrt)
            atomic_write_text(record_path, json.dumps(expected, indent=2) + "\n")
        return tensorrt_runtime.TensorRTInterpreter(engine_path, self.config.get("gpu", 0))

    def build(self, onnx_path, engine_path, tensorrt):
        """Build the engine for ``onnx_path`` into ``engine_path`` (atomically)."""
        from edge.backends import _tensorrt_runtime as tensorrt_runtime

        os.makedirs(os.path.dirname(engine_path), exist_ok=True)
        if self.config.get("builder") == "trtexec":
            trtexec = find_trtexec(self.config.get("trtexec"))
            if trtexec is None:
                raise EdgekitError("trtexec not found (looked at %s and PATH); give backend "
                                   "option trtexec = PATH or use builder = \"python\""
                                   % ", ".join(TRTEXEC_PATHS))
            tmp = engine_path + ".partial"
            command = trtexec_command(trtexec, onnx_path, tmp, self.precision,
                                      tensorrt.__version__, self.config.get("workspace_mb"))
            proc = subprocess.run(command, capture_output=True, text=True)
            log = parse_trtexec(proc.stdout + "\n" + proc.stderr)
            if proc.returncode != 0 or log["passed"] is False or not os.path.isfile(tmp):
                if os.path.exists(tmp):
                    os.remove(tmp)
                raise EdgekitError("trtexec could not build an engine from %s: %s" % (
                    onnx_path, (log["errors"] or ["exit status %d" % proc.returncode])[0]))
            os.replace(tmp, engine_path)
            return
        blob = tensorrt_runtime.build_engine(tensorrt, onnx_path, self.precision,
                                             self.config.get("workspace_mb"))
        atomic_write_bytes(engine_path, blob)

    def placement(self, interpreter):
        """An engine is one opaque unit on the GPU."""
        return {"available": False, "nodes": None, "delegated": None, "cpu": None,
                "delegate": "TensorRT %s" % self.precision, "partitions": 1,
                "ops_cpu": {}, "ops_delegated": {}}


BACKEND = TensorRTBackend
