"""ONNX Runtime on the emulated aarch64 boards (tests/fixtures/board.py): the int8 ONNX frame model
that ``edgekit export`` writes on x86, run by edgekit's onnxruntime backend on each board's real
aarch64 onnxruntime wheel. devices.toml ``bookworm-arm64-ort`` (Debian 12, Python 3.11,
onnxruntime 1.32.0) and ``bullseye-arm64-ort`` (Debian 11, Python 3.9, onnxruntime 1.19.2, the last
cp39 aarch64 wheel): the litert venv of ``bookworm-arm64`` / ``bullseye-arm64``, where LiteRT runs
the head.

``edgekit devices check``, one ``edgekit bench`` run with LiteRT's and ONNX Runtime's rows for
the same artifact (accuracy computed on the board for each, latency labelled emulated), and
parity of ONNX Runtime's frame output on ARM against ONNX Runtime on x86 (the board's x86 twin
venv, same pins) and against frame.tflite. Tolerances are the measured ones (README "Tested on");
nothing here is timed.

Deselected by default; run with ``python -m pytest -q -m arm64_board tests/test_arm_board_onnx.py``.
"""

import json
import os

import numpy as np
import pytest

from tests.fixtures.board import DEVICES_FILE, Board
from tests.fixtures.edge import decode_all
from tests.test_arm_board import FAST, _edgekit, _max_diff, _probe_board, _probe_x86

pytestmark = pytest.mark.arm64_board

# ONNX Runtime target -> (board, the LiteRT target of the same venv, its onnxruntime version)
ORT_TARGETS = {"bookworm-arm64-ort": ("bookworm-arm64", "bookworm-arm64", "1.32.0"),
               "bullseye-arm64-ort": ("bullseye-arm64", "bullseye-arm64", "1.19.2")}
# Measured (largest difference in int8 steps of the frame output over the swim video's 24 frames,
# 6144 values): ONNX Runtime on ARM vs ONNX Runtime on x86 (the board's x86 twin venv, same
# onnxruntime and numpy pins), and ONNX Runtime vs LiteRT/XNNPACK's frame.tflite on each side.
# Bit-exact on both boards.
TOLERANCE = {"onnxruntime arm-x86": 0, "onnxruntime-litert arm": 0, "onnxruntime-litert x86": 0}


@pytest.fixture(scope="session", params=sorted(ORT_TARGETS))
def ort_board(request, arm_boards):
    """(ONNX Runtime target name, a Board for it), the board built and started."""
    arm_boards(ORT_TARGETS[request.param][0])
    return request.param, Board(request.param)


def test_devices_check_lists_onnxruntime_available_on_the_board(ort_board):
    target, _ = ort_board
    proc = _edgekit(["devices", "check", target, "--devices", DEVICES_FILE], timeout=900)
    assert proc.returncode == 0, proc.stdout
    line = [l for l in proc.stdout.splitlines() if l.startswith(target + ": ")]
    assert line and line[0].startswith("%s: ok:" % target) and "(aarch64)" in line[0], proc.stdout
    assert "backend onnxruntime" in line[0], proc.stdout
    available = line[0].split("available backends: ")[1].split(";")[0].split(", ")
    assert "onnxruntime" in available and "litert" in available, proc.stdout


def test_bench_litert_and_onnxruntime_rows_for_one_artifact(ort_board, edge_onnx_model_dir,
                                                             tmp_path):
    """One run, two targets on the same board and model directory: a LiteRT row (frame.tflite)
    and an ONNX Runtime row (frame.onnx), accuracy computed on the board by each backend."""
    from tests.test_bench_run import _expected_outputs
    from edge.bench import evalset as evalsets
    from edge.manifest import Manifest

    target, _ = ort_board
    litert_target = ORT_TARGETS[target][1]
    out = tmp_path / "bench"
    proc = _edgekit(["bench", "--device", litert_target, "--device", target, "--devices",
                     DEVICES_FILE, "--model", edge_onnx_model_dir, "--out", str(out)] + FAST)
    assert proc.returncode == 0, proc.stdout
    data = json.loads((out / "results.json").read_text())
    rows = {r["target"]: r for r in data["records"]}
    assert set(rows) == {litert_target, target}, sorted(rows)
    assert (rows[litert_target]["variant"], rows[target]["variant"]) == ("tflite", "onnx")
    assert data["targets"][target]["config"]["backend"] == "onnxruntime"
    found, _ = evalsets.resolve(Manifest.load(edge_onnx_model_dir), edge_onnx_model_dir)
    expected = evalsets.score_outputs(found, _expected_outputs(edge_onnx_model_dir, found.x))
    from ai_edge_litert import __version__ as here
    for name, row in rows.items():
        config = data["targets"][name]
        assert row["emulated"] is True and config["config"]["emulated"] is True
        assert config["machine"]["machine"] == "aarch64"
        assert config["machine"]["tensorflow_modules"] == []
        assert row["latency"]["frame"]["p50_ms"] > 0
        for task in ("action", "identity"):
            assert row["accuracy"][task]["count"] == len(found.names) > 0
            if config["machine"]["runtime"]["version"] == here:
                # the same LiteRT as this machine's: x86's confusion matrix, bit-exact frames
                assert row["accuracy"][task]["confusion"] == expected[task]["confusion"], name
    # measured: ONNX Runtime's frame output is LiteRT's bit for bit (parity test below), and the
    # head runs on LiteRT in both rows, so the two backends score the same on the board
    assert rows[target]["accuracy"] == rows[litert_target]["accuracy"]
    markdown = (out / "results.md").read_text()
    for name in (litert_target, target):
        assert "| %s (emulated) |" % name in markdown, markdown
    print("bench rows:\n" + "\n".join(l for l in markdown.splitlines()
                                        if "(emulated) |" in l))


def test_parity_onnxruntime_frame_arm_vs_x86_and_vs_tflite(ort_board, edge_onnx_model_dir,
                                                            edge_swim_video, tmp_path):
    """frame.onnx through edgekit's onnxruntime backend on the board vs the same on x86 (the
    board's x86 twin venv: the same onnxruntime and numpy pins), and vs frame.tflite (LiteRT,
    XNNPACK) on each side, on the same frames."""
    target, board = ort_board
    frames = np.ascontiguousarray(decode_all(edge_swim_video)[..., ::-1])
    np.savez(str(tmp_path / "inputs.npz"), frames=frames)
    parity = {"root": tmp_path, "video": edge_swim_video, "model_dir": edge_onnx_model_dir}
    parts = ["frame", "onnx"]
    arm, info = _probe_board(board, parity, parts, str(tmp_path / "arm.npz"),
                             files=("frame.tflite", "frame.onnx", "head.tflite", "manifest.json"))
    twin = os.path.join(os.path.dirname(board.device.identity_file), "x86-litert", "bin",
                        "python")
    assert os.path.exists(twin), "the board's x86 twin venv is missing: make-board.sh build"
    x86 = _probe_x86(twin, parity, parts, str(tmp_path / "x86.npz"))
    assert info["onnxruntime"] == ORT_TARGETS[target][2], info
    figures = {
        "onnxruntime arm-x86": _max_diff(arm["frame/onnxruntime"], x86["frame/onnxruntime"]),
        "onnxruntime-litert arm": _max_diff(arm["frame/onnxruntime"], arm["frame/xnnpack"]),
        "onnxruntime-litert x86": _max_diff(x86["frame/onnxruntime"], x86["frame/xnnpack"]),
        "litert arm-x86": _max_diff(arm["frame/xnnpack"], x86["frame/xnnpack"]),
        "frames": int(len(frames)), "values": int(arm["frame/onnxruntime"].size),
    }
    print("parity %s: %s" % (target, json.dumps(figures)))
    for key, tolerance in TOLERANCE.items():
        assert figures[key] <= tolerance, (key, figures)
