"""``edgekit export``: the ONNX files it writes (checked by onnx.checker, described without
TensorFlow, pinned in the manifest's variants, I/O identical to frame.tflite's) and its errors."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from edge.errors import EdgekitError
from edge.manifest import Manifest
from edge.onnx_model import METADATA_KEY, describe_onnx, io_quantization, load_onnx
from tests.fixtures.onnx import ROOT, export_cli, needs_exact_int8

onnx = pytest.importorskip("onnx")


def test_export_records_both_variants_pinned_and_valid(edge_onnx_model_dir):
    manifest = Manifest.load(edge_onnx_model_dir)
    assert sorted(manifest.variants) == ["onnx", "onnx_fp32", "onnx_trt_int8"]
    manifest.verify(edge_onnx_model_dir)  # every file, with its sha256 and size
    assert manifest.tool_versions["tf2onnx"] and manifest.tool_versions["onnx"]
    tflite = manifest.model_file("frame")
    int8 = manifest.model_file("frame", "onnx")
    fp32 = manifest.model_file("frame", "onnx_fp32")
    assert (int8.file, fp32.file) == ("frame.onnx", "frame_fp32.onnx")
    # the int8 graph takes and gives exactly what frame.tflite does, scales included
    assert int8.inputs == tflite.inputs and [
        (s.name, s.shape, s.dtype, s.zero_point) for s in int8.outputs] == [
        (s.name, s.shape, s.dtype, s.zero_point) for s in tflite.outputs]
    for got, want in zip(int8.outputs, tflite.outputs):
        assert got.scale == pytest.approx(want.scale, rel=1e-7)
    units4 = tflite.output("lstm_inputs").shape[1]
    assert [(s.name, s.shape, s.dtype, s.scale) for s in fp32.inputs + fp32.outputs] == [
        ("frame", [1, 32, 32, 3], "float32", None), ("features", [1, 4, 4, 16], "float32", None),
        ("lstm_inputs", [1, units4], "float32", None)]
    assert {"QuantizeLinear", "DequantizeLinear", "Conv"} <= set(int8.ops)
    assert "Conv" in fp32.ops and not {"QuantizeLinear", "DequantizeLinear"} & set(fp32.ops)
    trt = manifest.model_file("frame", "onnx_trt_int8")
    assert [(s.dtype, s.scale) for s in trt.inputs + trt.outputs] == [("float32", None)] * 3
    assert {"QuantizeLinear", "DequantizeLinear", "Conv"} <= set(trt.ops)
    for variant in ("onnx", "onnx_fp32", "onnx_trt_int8"):
        path = manifest.model_path(edge_onnx_model_dir, "frame", variant)
        onnx.checker.check_model(onnx.load(path), full_check=True)
        assert describe_onnx(path) == manifest.model_file("frame", variant)


def test_the_io_quantization_is_in_the_graph_and_in_the_metadata(edge_onnx_model_dir):
    """ONNX Runtime reads the I/O scales from metadata (no onnx package on the camera); export
    writes what the graph's QuantizeLinear/DequantizeLinear nodes hold."""
    model = load_onnx(os.path.join(edge_onnx_model_dir, "frame.onnx"))
    graph = io_quantization(model)
    metadata = {p.key: p.value for p in model.metadata_props}
    assert {k: tuple(v) for k, v in json.loads(metadata[METADATA_KEY]).items()} == graph
    assert graph["frame"] == (1.0, 0) and set(graph) == {"frame", "features", "lstm_inputs"}
    fp32 = load_onnx(os.path.join(edge_onnx_model_dir, "frame_fp32.onnx"))
    assert io_quantization(fp32) == {} and not list(fp32.metadata_props)


def test_the_float_variant_has_no_int8_left(edge_onnx_model_dir):
    model = load_onnx(os.path.join(edge_onnx_model_dir, "frame_fp32.onnx"))
    kinds = {t.data_type for t in model.graph.initializer}
    assert onnx.TensorProto.INT8 not in kinds and onnx.TensorProto.UINT8 not in kinds
    weights = [onnx.numpy_helper.to_array(t) for t in model.graph.initializer if t.dims]
    assert weights and all(w.dtype in (np.float32, np.int64) for w in weights)


def test_describe_loads_no_tensorflow(edge_onnx_model_dir):
    code = ("import sys, json; from edge.onnx_model import describe_onnx;"
            "m = describe_onnx(sys.argv[1]);"
            "print(json.dumps([m.outputs[0].dtype, any(k.startswith('tensorflow') "
            "for k in sys.modules)]))")
    proc = subprocess.run([sys.executable, "-c", code,
                           os.path.join(edge_onnx_model_dir, "frame.onnx")], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == ["int8", False]


def test_export_refuses_a_model_dir_whose_tflite_was_replaced(edge_model_dir, tmp_path):
    directory = str(tmp_path / "swim")
    shutil.copytree(edge_model_dir, directory)
    with open(os.path.join(directory, "frame.tflite"), "ab") as handle:
        handle.write(b"\0")
    proc = export_cli(directory)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1].startswith(
        "edgekit: error: manifest does not match model ")
    assert "frame.tflite" in proc.stderr and "Traceback" not in proc.stderr
    assert sorted(os.listdir(directory)) == sorted(os.listdir(edge_model_dir))  # nothing written
    proc = export_cli(str(tmp_path / "nowhere"))
    assert proc.returncode == 1 and "edgekit: error: no manifest at" in proc.stderr


def test_load_onnx_errors(tmp_path):
    with pytest.raises(EdgekitError, match="does not exist; run: edgekit export"):
        load_onnx(tmp_path / "frame.onnx")
    (tmp_path / "bad.onnx").write_bytes(b"\x08\x07garbage that is no protobuf \xff\xff")
    with pytest.raises(EdgekitError, match="bad.onnx (is not a readable ONNX model|holds no "
                                           "ONNX graph)"):
        load_onnx(tmp_path / "bad.onnx")


def test_a_float_model_dir_has_no_int8_to_export(edge_model_dir, tmp_path):
    """--method fp32/fp16/dynamic directories have no int8 scales: the int8 variants are refused
    before anything is converted."""
    directory = str(tmp_path / "swim")
    shutil.copytree(edge_model_dir, directory)
    manifest = Manifest.load(directory)
    manifest.method = "fp32"
    manifest.save(directory)
    proc = export_cli(directory, "--precision", "int8")
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == (
        "edgekit: error: model %s was quantized with --method fp32 (float activations): it has "
        "no int8 scales for --precision int8; use --precision fp32, or export a ptq/qat model "
        "directory" % directory)


@needs_exact_int8
def test_a_qat_model_dir_exports_with_its_qat_scales(quantized, tmp_path):
    """The QAT directory (the one the QAT tests share) exports too: the int8 graph carries
    frame.tflite's QAT output scale and runs like it on ONNX Runtime (measured: max 0 int8 steps
    over 8 frames of moving patterns; tolerance 1)."""
    from edge.interpreter import make_interpreter
    from edge.session import ModelSession
    from tests.fixtures.edge import make_frames

    qat_dir, _ = quantized("qat", interrupted=True)
    directory = str(tmp_path / "qat")
    shutil.copytree(qat_dir, directory)
    proc = export_cli(directory, "--precision", "int8")
    assert proc.returncode == 0, proc.stderr
    manifest = Manifest.load(directory)
    assert sorted(manifest.variants) == ["onnx"] and manifest.method == "qat"
    assert manifest.model_file("frame", "onnx").outputs == manifest.model_file("frame").outputs
    session = ModelSession(directory)
    pre = session.new_preprocessor("BGR")
    lite = make_interpreter(os.path.join(directory, "frame.tflite"))
    ort = make_interpreter(os.path.join(directory, "frame.onnx"), device="onnxruntime")
    worst = 0
    for frame in make_frames(8, size=(48, 64), seed=3):
        pixels = np.empty(tuple(session.frame_in_spec.shape[1:]), np.uint8)
        pre(frame, pixels)
        outputs = []
        for interpreter in (lite, ort):
            interpreter.set_tensor(interpreter.get_input_details()[0]["index"], pixels[None])
            interpreter.invoke()
            outputs.append(interpreter.get_tensor(
                interpreter.get_output_details()[0]["index"]).astype(int))
        worst = max(worst, int(np.abs(outputs[0] - outputs[1]).max()))
    print("qat int8 ORT vs TFLite: max %d steps" % worst)
    assert worst <= 1
