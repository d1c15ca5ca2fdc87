"""The onnxruntime backend on the files ``edgekit export`` writes: parity with frame.tflite on real
video frames, the streaming runner end to end, the IOBinding buffers, and its errors."""

import json
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from edge import backends
from edge.errors import EdgekitError
from edge.interpreter import make_interpreter
from edge.manifest import Manifest, sha256_file
from edge.runner import StreamingRunner
from edge.session import ModelSession
from edge.sources import FrameSource
from tests.fixtures.edge import decode_all
from tests.fixtures.onnx import needs_exact_int8

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Tolerances, from what was measured on the tiny ptq model over the 24 frames of edge_swim_video
# (see each test's docstring): frame features in int8 output steps, head task values absolute.
INT8_STEPS = 1
FP32_STEPS = 8
HEAD_TOLERANCE = {"onnxruntime": 0.02, "onnxruntime:fp32": 0.15,
                  "onnxruntime:trt_int8": 0.15}


def _frame_inputs(model_dir, video):
    """Every frame of ``video`` preprocessed for the frame model (uint8 pixels, the runner's)."""
    session = ModelSession(model_dir)
    pre = session.new_preprocessor("BGR")
    frames = decode_all(video)
    inputs = np.empty((len(frames),) + tuple(session.frame_in_spec.shape[1:]), np.uint8)
    for i, frame in enumerate(frames):
        pre(frame, inputs[i])
    return inputs


def _outputs(interpreter, inputs, dtype=None):
    index_in = interpreter.get_input_details()[0]["index"]
    index_out = interpreter.get_output_details()[0]["index"]
    results = []
    for pixels in inputs:
        interpreter.set_tensor(index_in, pixels[None].astype(dtype or pixels.dtype))
        interpreter.invoke()
        results.append(interpreter.get_tensor(index_out)[0])
    return np.stack(results)


@needs_exact_int8
def test_int8_onnx_matches_frame_tflite_on_video_frames(edge_onnx_model_dir, edge_swim_video):
    """ONNX Runtime (CPU provider) on frame.onnx vs LiteRT/XNNPACK on frame.tflite, the same
    uint8 inputs: measured max difference 0 int8 steps on the tiny ptq model's 24 video frames
    (tolerance 1 step: ORT's QLinearConv and XNNPACK round requantization independently; on the
    EfficientNet-B3 model the difference is up to 11 steps, where LiteRT's own reference kernels
    differ from XNNPACK by 12, see quantize/onnx_export.py)."""
    inputs = _frame_inputs(edge_onnx_model_dir, edge_swim_video)
    lite = make_interpreter(os.path.join(edge_onnx_model_dir, "frame.tflite"), device="cpu")
    ort = make_interpreter(os.path.join(edge_onnx_model_dir, "frame.onnx"),
                           device="onnxruntime")
    want, got = _outputs(lite, inputs), _outputs(ort, inputs)
    assert got.dtype == want.dtype == np.int8 and got.shape == want.shape
    steps = np.abs(got.astype(int) - want.astype(int))
    print("int8 ORT vs TFLite: max %d steps, mean %.4f, frames %d"
          % (steps.max(), steps.mean(), len(inputs)))
    assert steps.max() <= INT8_STEPS
    assert ort.get_output_details()[0]["quantization"] == \
        lite.get_output_details()[0]["quantization"]


def test_fp32_onnx_is_the_int8_model_at_float_activations(edge_onnx_model_dir, edge_swim_video):
    """frame_fp32.onnx (float activations, the int8 model's weights) vs frame.tflite's int8
    features dequantized, in output steps: measured max 5.5 steps, mean 0.91 on the 24 frames
    (tolerance 8). The difference is the int8 model's own activation rounding and clamping to
    its calibrated ranges, which the float graph does not do: not an export error (the int8
    graph matches to 0 steps)."""
    inputs = _frame_inputs(edge_onnx_model_dir, edge_swim_video)
    lite = make_interpreter(os.path.join(edge_onnx_model_dir, "frame.tflite"), device="cpu")
    ort = make_interpreter(os.path.join(edge_onnx_model_dir, "frame_fp32.onnx"),
                           device="onnxruntime:fp32")
    scale, zero_point = lite.get_output_details()[0]["quantization"]
    want = (_outputs(lite, inputs).astype(np.float64) - zero_point) * scale
    got = _outputs(ort, inputs, np.float32)
    assert got.dtype == np.float32
    steps = np.abs(got - want) / scale
    print("fp32 ORT vs int8 TFLite: max %.2f steps, mean %.4f" % (steps.max(), steps.mean()))
    assert steps.max() <= FP32_STEPS


def _windows(model_dir, video, device):
    runner = StreamingRunner(model_dir, device=device, threads=1)
    windows = []
    for index, timestamp, frame in FrameSource(video):
        windows.extend(runner.process(frame, index, timestamp))
    return runner, windows


@pytest.mark.parametrize("device", [pytest.param("onnxruntime", marks=needs_exact_int8),
                                    "onnxruntime:fp32",
                                    pytest.param("onnxruntime:trt_int8", marks=needs_exact_int8)])
def test_streaming_runner_on_onnxruntime_matches_litert(edge_onnx_model_dir, edge_swim_video,
                                                        device):
    """The whole runner (preprocessing, ring, requantization, head on LiteRT) with the frame
    model on ONNX Runtime gives LiteRT's windows: the same windows, the same labels where the
    top two are apart, task values within the tolerance: int8 measured 0.0 (tolerance 0.02),
    the fp32 variant max 0.094 over the 17 windows (tolerance 0.15; its features differ by the
    int8 activation rounding, see the test above), the TensorRT int8 graph (symmetric ranges,
    test_edge_tensorrt) max 0.078 (tolerance 0.15)."""
    tolerance = HEAD_TOLERANCE[device]
    _, want = _windows(edge_onnx_model_dir, edge_swim_video, "cpu")
    runner, got = _windows(edge_onnx_model_dir, edge_swim_video, device)
    assert type(runner.session.frame_interpreter).__name__ == "OnnxInterpreter"
    assert len(got) == len(want) > 10
    worst = 0.0
    for a, b in zip(got, want):
        assert (a.first_frame, a.last_frame) == (b.first_frame, b.last_frame)
        for name, task in b.tasks.items():
            worst = max(worst, float(np.abs(a.tasks[name].values - task.values).max()))
            if task.kind == "classification" and sorted(task.values)[-1] - \
                    sorted(task.values)[-2] > 2 * tolerance:
                assert a.tasks[name].label == task.label
    print("%s vs litert: max task value difference %.4f over %d windows"
          % (device, worst, len(got)))
    assert worst <= tolerance


def test_io_buffers_are_bound_once_and_reused(edge_onnx_model_dir):
    """tensor(i)() is the buffer ONNX Runtime reads and writes (IOBinding): no per-frame arrays."""
    interpreter = make_interpreter(os.path.join(edge_onnx_model_dir, "frame.onnx"),
                                   device="onnxruntime", threads=2)
    assert interpreter.session.get_session_options().intra_op_num_threads == 2
    (inp,) = interpreter.get_input_details()
    out = next(d for d in interpreter.get_output_details() if d["name"] == "features")
    view_in, view_out = interpreter.tensor(inp["index"])(), interpreter.tensor(out["index"])()
    pointer = view_out.ctypes.data
    view_in[...] = 0
    interpreter.invoke()
    dark = view_out.copy()
    view_in[...] = np.arange(view_in.size, dtype=np.int64).reshape(view_in.shape) % 256
    interpreter.invoke()
    assert view_out.ctypes.data == pointer and interpreter.tensor(out["index"])() is view_out
    assert not np.array_equal(view_out, dark)  # the output moved with the input written in place
    assert np.array_equal(interpreter.get_tensor(out["index"]), view_out)
    signature = interpreter.get_signature_list()["serving_default"]
    assert signature == {"inputs": ["frame"], "outputs": ["features", "lstm_inputs"]}


def test_streaming_on_onnxruntime_allocates_nothing_per_frame(edge_onnx_model_dir, edge_video):
    """The runner's hot path with the frame model on ONNX Runtime: as with LiteRT
    (test_edge_runner), 200 frames retain nothing and make no frame-sized temporaries (Python
    allocations, tracemalloc; the buffers ORT reads and writes are the bound ones). Warmed
    with 300 frames first: onnxruntime's Python binding keeps ~25 KB of its own objects over
    its first couple of hundred runs (measured: 24.9 KB over frames 10..210, then 0.3 KB per
    200 frames, flat)."""
    import tracemalloc

    frames = decode_all(edge_video)
    runner = StreamingRunner(edge_onnx_model_dir, device="onnxruntime", stride=1000,
                             rois=[(0, 0, 32, 32)])
    for i in range(300):
        runner.process(frames[i % len(frames)], frame_index=i)
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        for i in range(200):
            runner.process(frames[i % len(frames)], frame_index=300 + i)
        after, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert after - before < 2048
    assert peak - before < 16 * 1024


def test_run_cli_on_onnxruntime_loads_no_tensorflow(edge_onnx_model_dir, edge_swim_video,
                                                    tmp_path):
    code = textwrap.dedent("""
        import json, sys
        import edge.backends.onnxruntime
        from click.testing import CliRunner
        from edge.cli import main
        result = CliRunner().invoke(main, ["run", "--model", sys.argv[1], "--source", sys.argv[2],
                                           "--device", "onnxruntime", "--jsonl", sys.argv[3]])
        loaded = sorted(m for m in sys.modules if m == "tensorflow" or m.startswith("tensorflow.")
                        or m.startswith("tf_keras") or m.startswith("keras"))
        print(json.dumps({"exit": result.exit_code, "output": result.output[-300:],
                          "tf": loaded, "ort": "onnxruntime" in sys.modules}))
    """)
    jsonl = tmp_path / "windows.jsonl"
    proc = subprocess.run([sys.executable, "-c", code, edge_onnx_model_dir, edge_swim_video,
                           str(jsonl)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["exit"] == 0, report["output"]
    assert report["tf"] == [] and report["ort"]
    lines = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert len(lines) > 10 and lines[0]["tasks"]["action"]["label"]


# -- errors ---------------------------------------------------------------------------------------

def test_a_model_dir_without_onnx_says_how_to_export(edge_model_dir):
    with pytest.raises(EdgekitError, match=r"has no onnx variant \(it has: tflite\); build it "
                                           r"with edgekit export --model DIR"):
        ModelSession(edge_model_dir, device="onnxruntime")


def _copy(model_dir, tmp_path):
    directory = str(tmp_path / "swim")
    shutil.copytree(model_dir, directory)
    return directory


def test_a_corrupt_onnx_file_is_one_line_error(edge_onnx_model_dir, tmp_path):
    directory = _copy(edge_onnx_model_dir, tmp_path)
    path = os.path.join(directory, "frame.onnx")
    with open(path, "r+b") as handle:
        handle.truncate(os.path.getsize(path) // 2)
    with pytest.raises(EdgekitError, match="frame.onnx.*size/sha256 differ from manifest.json"):
        ModelSession(directory, device="onnxruntime")
    with pytest.raises(EdgekitError, match=r"cannot load .*frame.onnx with onnxruntime: .*; the "
                                           r"file is corrupt or truncated, copy it again or run: "
                                           r"edgekit export --model DIR"):
        make_interpreter(path, device="onnxruntime")
    with pytest.raises(EdgekitError, match="ONNX model .*missing.onnx does not exist; run: "
                                           "edgekit export"):
        make_interpreter(os.path.join(directory, "missing.onnx"), device="onnxruntime")


def test_an_onnx_file_not_matching_the_manifest_is_refused(edge_onnx_model_dir, tmp_path):
    """The fp32 file in the int8 variant's place, with its hash recorded: the I/O check catches
    it (uint8/int8 with scales expected, float32 found)."""
    directory = _copy(edge_onnx_model_dir, tmp_path)
    shutil.copyfile(os.path.join(directory, "frame_fp32.onnx"),
                    os.path.join(directory, "frame.onnx"))
    manifest = Manifest.load(directory)
    entry = manifest.variants["onnx"]["frame"]
    entry.sha256 = sha256_file(os.path.join(directory, "frame.onnx"))
    entry.size_bytes = os.path.getsize(os.path.join(directory, "frame.onnx"))
    manifest.save(directory)
    with pytest.raises(EdgekitError, match=r"manifest does not match model frame.onnx: its "
                                           r"inputs are \[\('frame', \(1, 32, 32, 3\), "
                                           r"'float32'"):
        ModelSession(directory, device="onnxruntime")


def test_options_and_availability():
    assert backends.create("onnxruntime").variant == "onnx"
    assert backends.create("onnxruntime:fp32").variant == "onnx_fp32"
    assert backends.create("onnxruntime:cuda").describe() == "onnxruntime provider=cuda"
    with pytest.raises(EdgekitError, match="bad device 'onnxruntime:npu'"):
        backends.create("onnxruntime:npu")
    with pytest.raises(EdgekitError, match="option provider = 'rocm' is not allowed"):
        backends.create("onnxruntime", provider="rocm")
    rows = {key: reason for key, _, reason in backends.availability()}
    assert rows["onnxruntime"] is None
    reason = backends.create("onnxruntime:cuda").probe()
    assert "has no CUDAExecutionProvider here" in reason and "onnxruntime-gpu" in reason
    with pytest.raises(EdgekitError, match="has no CUDAExecutionProvider"):
        backends.create("onnxruntime:cuda").load("whatever.onnx")


@needs_exact_int8
def test_bench_reports_onnxruntime_beside_litert_for_the_same_artifact(edge_onnx_model_dir,
                                                                      tmp_path):
    """Two local targets, one artifact: a LiteRT row and an ONNX Runtime row, each with its
    latency and its accuracy computed by running that backend (the int8 graphs agree to 0 steps
    on these clips, so the accuracies are equal)."""
    import json

    from click.testing import CliRunner

    from edge.cli import main

    devices = tmp_path / "devices.toml"
    devices.write_text('[devices.cpu]\nthreads = 1\n'
                       '[devices.cpu-ort]\nthreads = 1\nbackend = "onnxruntime"\n')
    out = tmp_path / "out"
    result = CliRunner().invoke(main, [
        "bench", "--devices", str(devices), "--device", "cpu", "--device", "cpu-ort", "--model",
        edge_onnx_model_dir, "--out", str(out), "--runs", "3", "--min-seconds", "0",
        "--warmup-seconds", "0", "--pace-seconds", "0.3", "--fps", "40", "--camera", "64x48"])
    assert result.exit_code == 0, result.output
    data = json.loads((out / "results.json").read_text())
    rows = {r["target"]: r for r in data["records"]}
    assert set(rows) == {"cpu", "cpu-ort"}
    assert data["targets"]["cpu-ort"]["config"]["backend"] == "onnxruntime"
    assert (rows["cpu"]["variant"], rows["cpu-ort"]["variant"]) == ("tflite", "onnx")
    for row in rows.values():
        assert row["latency"]["frame"]["p50_ms"] > 0 and row["accuracy"]
    assert rows["cpu-ort"]["accuracy"] == rows["cpu"]["accuracy"]
    assert "| cpu-ort |" in (out / "results.md").read_text()


def test_int8_saturation_is_told_from_the_cpu_flags(tmp_path):
    """x86-64 without avx512_vnni / avx_vnni: ONNX Runtime's int8 kernels may saturate; with
    either flag, on ARM, or with no readable flags: no."""
    from edge.backends.onnxruntime import int8_may_saturate

    def cpuinfo(flags):
        path = tmp_path / ("cpuinfo-%d" % len(list(tmp_path.iterdir())))
        path.write_text("processor\t: 0\nflags\t\t: %s\n\nprocessor\t: 1\n" % flags)
        return str(path)

    assert int8_may_saturate(cpuinfo("fpu sse4_2 avx avx2 fma"), "x86_64")
    assert not int8_may_saturate(cpuinfo("avx2 avx512f avx512_vnni"), "x86_64")
    assert not int8_may_saturate(cpuinfo("avx2 avx_vnni"), "x86_64")
    assert not int8_may_saturate(cpuinfo("fp asimd asimddp"), "aarch64")
    assert not int8_may_saturate(str(tmp_path / "missing"), "x86_64")
