"""The tensorrt backend: everything that can be checked without TensorRT (the ONNX files it
builds from, run by ONNX Runtime; engine-cache keys and records; trtexec command lines and the
parsing of real trtexec logs; its errors here), and, marked ``hardware``, the engine build and run
where TensorRT and a GPU are present (skipped elsewhere with the reason)."""

import json
import os
import shutil

import numpy as np
import pytest

from edge import backends
from edge.backends import tensorrt as trt_backend
from edge.errors import EdgekitError
from edge.interpreter import make_interpreter
from edge.session import ModelSession
from tests.fixtures.onnx import needs_exact_int8

onnx = pytest.importorskip("onnx")

# Real trtexec output, a few lines each, as printed (dates kept):
# - Jetson Orin device block and version line, TensorRT 10.16.2: OE4T/meta-tegra pull request
#   #2243 ("39.2.0: tensorrt-core: split per-architecture resources into separate packages").
ORIN_HEADER = """\
[01/01/1970-03:47:30] [I] === Device Information ===
[01/01/1970-03:47:30] [I] Selected Device: Orin
[01/01/1970-03:47:30] [I] Compute Capability: 8.7
[01/01/1970-03:47:30] [I] SMs: 8
[01/01/1970-03:47:30] [I] TensorRT version: 10.16.2
"""
# - Performance summary on a jetson-agx-orin-devkit (JetPack 6): OE4T/meta-tegra-community pull
#   request #113 ("Update TensorRT test script").
ORIN_SUMMARY = """\
[02/27/2024-18:35:51] [I] === Performance summary ===
[02/27/2024-18:35:51] [I] Throughput: 208.729 qps
[02/27/2024-18:35:51] [I] Latency: min = 4.81763 ms, max = 4.86572 ms, mean = 4.83767 ms, median = 4.83752 ms, percentile(90%) = 4.84772 ms, percentile(95%) = 4.85034 ms, percentile(99%) = 4.85547 ms
[02/27/2024-18:35:51] [I] Enqueue Time: min = 0.345459 ms, max = 0.39978 ms, mean = 0.357979 ms, median = 0.356689 ms, percentile(90%) = 0.365295 ms, percentile(95%) = 0.372803 ms, percentile(99%) = 0.384033 ms
"""
# - The closing line and GPU compute statistics on a Jetson Xavier AGX, TensorRT 8.4: OE4T/meta-tegra
#   pull request #952 ("Fixup for tensorrt").
XAVIER_TAIL = """\
[03/11/2022-14:57:03] [I] GPU Compute Time: min = 0.375977 ms, max = 0.403564 ms, mean = 0.388221 ms, median = 0.388443 ms, percentile(99%) = 0.393188 ms
[03/11/2022-14:57:03] [I] Total GPU Compute Time: 2.99202 s
&&&& PASSED TensorRT.trtexec [TensorRT v8400] # trtexec --loadEngine=mnist16.trt --batch=16
"""


def test_parse_trtexec_reads_real_jetson_logs():
    header = trt_backend.parse_trtexec(ORIN_HEADER)
    assert (header["tensorrt"], header["device"], header["compute_capability"]) == \
        ("10.16.2", "Orin", "8.7")
    summary = trt_backend.parse_trtexec(ORIN_SUMMARY)
    assert summary["throughput_qps"] == 208.729
    assert summary["summary"]["Latency"] == {"min": 4.81763, "max": 4.86572, "mean": 4.83767,
                                             "median": 4.83752, "p90": 4.84772, "p95": 4.85034,
                                             "p99": 4.85547}
    assert summary["summary"]["Enqueue Time"]["median"] == 0.356689
    tail = trt_backend.parse_trtexec(XAVIER_TAIL)
    assert tail["passed"] is True and tail["tensorrt"] == "8.4.0"
    assert tail["summary"]["GPU Compute Time"]["median"] == 0.388443
    assert tail["summary"]["GPU Compute Time"]["p99"] == 0.393188


def test_parse_trtexec_failures_and_versions():
    log = ("[12/02/2026-07:00:00] [E] [TRT] ModelImporter.cpp:949: While parsing node number 3\n"
           "[12/02/2026-07:00:00] [E] Failed to parse onnx file\n"
           "&&&& FAILED TensorRT.trtexec [TensorRT v101602] # trtexec --onnx=frame.onnx\n")
    parsed = trt_backend.parse_trtexec(log)
    assert parsed["passed"] is False and parsed["tensorrt"] == "10.16.2"
    assert parsed["errors"][0] == "ModelImporter.cpp:949: While parsing node number 3"
    assert [trt_backend.decode_version(v) for v in (8400, 8601, 100200, 101602)] == \
        ["8.4.0", "8.6.1", "10.2.0", "10.16.2"]


def test_engine_cache_key_names_version_gpu_precision_and_onnx():
    sha = "ab" * 32
    key = trt_backend.engine_key("10.3.0.30", "Orin", "8.7", "fp16", sha)
    assert key == "trt10.3.0-orin-sm87-fp16-abababababab"
    others = {trt_backend.engine_key(*args) for args in [
        ("10.3.0", "Orin", "8.7", "fp16", sha), ("8.6.2", "Orin", "8.7", "fp16", sha),
        ("10.3.0", "NVIDIA GeForce RTX 2080", "7.5", "fp16", sha),
        ("10.3.0", "Orin", "8.7", "int8", sha), ("10.3.0", "Orin", "8.7", "fp16", "cd" * 32)]}
    assert len(others) == 5 and key in others
    engine, record = trt_backend.engine_paths("/models/swim/frame_fp32.onnx", key)
    assert engine == "/models/swim/.engines/frame_fp32.%s.engine" % key
    assert record == engine + ".json"


def test_an_engine_built_elsewhere_is_refused_with_what_to_do():
    here = trt_backend.engine_record("10.3.0", "Orin", "8.7", "fp16", "ab" * 32)
    trt_backend.check_engine_record(dict(here), here, "e.engine")
    with pytest.raises(EdgekitError, match=r"engine e.engine was built for GPU NVIDIA GeForce "
                                           r"RTX 2080, but this target has GPU Orin .*delete it "
                                           r"and its .json, it is rebuilt here"):
        trt_backend.check_engine_record(dict(here, gpu="NVIDIA GeForce RTX 2080"), here,
                                        "e.engine")
    with pytest.raises(EdgekitError, match="built for TensorRT version 8.6.2, but this target "
                                           "has TensorRT version 10.3.0"):
        trt_backend.check_engine_record(dict(here, tensorrt="8.6.2"), here, "e.engine")
    with pytest.raises(EdgekitError, match="engine record of e.engine is unreadable"):
        trt_backend.check_engine_record(None, here, "e.engine")


def test_trtexec_command_lines():
    fp16 = trt_backend.trtexec_command("trtexec", "m.onnx", "m.engine", "fp16", "10.3.0")
    assert fp16 == ["trtexec", "--onnx=m.onnx", "--saveEngine=m.engine", "--skipInference",
                    "--fp16"]
    int8 = trt_backend.trtexec_command("trtexec", "m.onnx", "m.engine", "int8", "8.5.2", 256)
    assert int8[3:] == ["--buildOnly", "--int8", "--fp16", "--memPoolSize=workspace:256M"]
    assert "--calib" not in " ".join(int8)  # int8 comes from the graph's Q/DQ scales only


def test_options_variants_and_availability_here():
    assert backends.create("tensorrt").variant == "onnx_fp32"
    assert backends.create("tensorrt:int8").variant == "onnx_trt_int8"
    assert backends.create("tensorrt:1").config == {"gpu": 1}
    with pytest.raises(EdgekitError, match="bad device 'tensorrt:int4'"):
        backends.create("tensorrt:int4")
    with pytest.raises(EdgekitError, match="option builder = 'onnx' is not allowed"):
        backends.create("tensorrt", builder="onnx")
    rows = {key: reason for key, _, reason in backends.availability()}
    assert "tensorrt" in rows and rows["onnxruntime"] is None
    if _tensorrt_importable():
        pytest.skip("TensorRT is importable here: its absence cannot be checked")
    assert rows["tensorrt"].startswith("TensorRT is not importable here")
    assert "JetPack" in rows["tensorrt"]


def _tensorrt_importable():
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        return False
    return True


def test_sessions_say_what_is_missing(edge_model_dir, edge_onnx_model_dir):
    with pytest.raises(EdgekitError, match=r"has no onnx_trt_int8 variant .*build it with "
                                           r"edgekit export --model DIR"):
        ModelSession(edge_model_dir, device="tensorrt:int8")
    if not _tensorrt_importable():
        with pytest.raises(EdgekitError, match="TensorRT is not importable here"):
            ModelSession(edge_onnx_model_dir, device="tensorrt")


# -- the ONNX files the engines are built from --------------------------------------------------

def test_the_tensorrt_int8_graph_is_symmetric_int8_with_float_io(edge_onnx_model_dir):
    """What TensorRT's explicit quantization accepts: every Q/DQ zero point an int8 0, no uint8
    or int32 tensors left, float32 in and out; and it passes onnx.checker."""
    from onnx import numpy_helper

    path = os.path.join(edge_onnx_model_dir, "frame_trt_int8.onnx")
    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    constants = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    quantizers = [n for n in model.graph.node if n.op_type in ("QuantizeLinear",
                                                               "DequantizeLinear")]
    assert len(quantizers) > 10
    for node in quantizers:
        zero = constants[node.input[2]]
        assert zero.dtype == np.int8 and not np.any(zero), node.name
        if node.input[0] in constants:
            assert constants[node.input[0]].dtype == np.int8  # weights; biases are float
    assert not [n for n, v in constants.items() if v.dtype in (np.uint8, np.int32)]
    for value in list(model.graph.input) + list(model.graph.output):
        assert value.type.tensor_type.elem_type == onnx.TensorProto.FLOAT


@needs_exact_int8
def test_the_tensorrt_int8_graph_runs_on_onnxruntime_near_frame_tflite(edge_onnx_model_dir,
                                                                        edge_swim_video):
    """ONNX Runtime on frame_trt_int8.onnx vs frame.tflite's int8 features dequantized, in
    frame.tflite output steps, on the 24 video frames: measured max 12.9, mean 1.75 (tolerance
    20; the fp32 variant: max 5.5, mean 0.91). Its ranges are TFLite's made symmetric, so a
    one-sided range (the pixels, every sigmoid output of the squeeze-excite gates: 0..1) gets
    half the resolution, and the rounding adds up over the blocks; over the whole runner the
    head's task values stay within 0.078 of LiteRT's (test_edge_onnxruntime), less than the
    fp32 variant's 0.094."""
    from tests.test_edge_onnxruntime import _frame_inputs, _outputs

    inputs = _frame_inputs(edge_onnx_model_dir, edge_swim_video)
    lite = make_interpreter(os.path.join(edge_onnx_model_dir, "frame.tflite"), device="cpu")
    ort = make_interpreter(os.path.join(edge_onnx_model_dir, "frame_trt_int8.onnx"),
                           device="onnxruntime:trt_int8")
    scale, zero_point = lite.get_output_details()[0]["quantization"]
    want = (_outputs(lite, inputs).astype(np.float64) - zero_point) * scale
    steps = np.abs(_outputs(ort, inputs, np.float32) - want) / scale
    print("trt_int8 on ORT vs int8 TFLite: max %.2f steps, mean %.4f"
          % (steps.max(), steps.mean()))
    assert steps.max() <= 20 and steps.mean() <= 3


# -- on a target with TensorRT and a GPU ---------------------------------------------------------

@pytest.fixture()
def gpu_model_dir(edge_onnx_model_dir, tmp_path):
    if not _tensorrt_importable():
        pytest.skip("TensorRT is not importable here (it runs on a Jetson or a GPU host)")
    problem = backends.create("tensorrt").probe()
    if problem:
        pytest.skip(problem)
    directory = str(tmp_path / "swim")
    shutil.copytree(edge_onnx_model_dir, directory)
    return directory


@pytest.mark.hardware
@pytest.mark.parametrize("precision", ["fp16", "int8"])
def test_engine_is_built_cached_and_runs_the_frame_model(gpu_model_dir, edge_swim_video,
                                                         precision):
    from tests.test_edge_onnxruntime import _frame_inputs, _outputs

    session = ModelSession(gpu_model_dir, device="tensorrt:" + precision)
    engines = os.path.join(gpu_model_dir, ".engines")
    (engine,) = [f for f in os.listdir(engines) if f.endswith(".engine")]
    stamp = os.stat(os.path.join(engines, engine)).st_mtime_ns
    inputs = _frame_inputs(gpu_model_dir, edge_swim_video)
    lite = make_interpreter(os.path.join(gpu_model_dir, "frame.tflite"), device="cpu")
    scale, zero_point = lite.get_output_details()[0]["quantization"]
    want = (_outputs(lite, inputs).astype(np.float64) - zero_point) * scale
    steps = np.abs(_outputs(session.frame_interpreter, inputs, np.float32) - want) / scale
    assert steps.max() <= 20  # the ORT-measured bounds of the variants (see above), unmeasured
    ModelSession(gpu_model_dir, device="tensorrt:" + precision)
    assert os.stat(os.path.join(engines, engine)).st_mtime_ns == stamp  # cached, not rebuilt
    record_path = os.path.join(engines, engine + ".json")
    record = json.load(open(record_path))
    json.dump(dict(record, gpu="another GPU"), open(record_path, "w"))
    with pytest.raises(EdgekitError, match="was built for GPU another GPU"):
        ModelSession(gpu_model_dir, device="tensorrt:" + precision)


def test_the_shipped_jetson_trt_target_and_the_device_check():
    """devices.toml's Jetson GPU example selects this backend (with tegrastats power), and the
    device-side check (``python -m edge.bench.check``, what ``edgekit devices check`` runs on a
    target) lists both new backends with their availability."""
    import subprocess
    import sys

    from edge.devices import load_devices

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    device = load_devices(os.path.join(root, "devices.toml"))["jetson-trt"]
    assert device.backend == "tensorrt" and device.power == "tegrastats"
    assert device.make_backend().variant == "onnx_fp32" and device.variant == "onnx_fp32"
    proc = subprocess.run([sys.executable, "-m", "edge.bench.check",
                           json.dumps({"backend": "tensorrt"})], cwd=root, capture_output=True,
                          text=True, timeout=120)
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    rows = {row["key"]: row for row in report["backends"]}
    assert rows["onnxruntime"]["available"] is True
    if not _tensorrt_importable():
        assert proc.returncode == 2 and rows["tensorrt"]["available"] is False
        assert "TensorRT is not importable here" in rows["tensorrt"]["reason"]
