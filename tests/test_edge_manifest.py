"""manifest.json: round trip, strict loading that names the key path, verify against the files."""

import copy
import json
import os
import shutil
import stat

import pytest

from edge.errors import EdgekitError
from edge.manifest import Manifest
from tests.fixtures.edge import CLIP_LENGTH, FEATURE_SHAPE


@pytest.fixture()
def manifest_dict(edge_model_dir):
    with open(os.path.join(edge_model_dir, "manifest.json")) as handle:
        return json.load(handle)


def test_round_trip(edge_model_dir, tmp_path):
    manifest = Manifest.load(edge_model_dir)
    assert manifest.clip_length == CLIP_LENGTH and manifest.feature_shape == list(FEATURE_SHAPE)
    assert manifest.backbone == "test_tiny" and manifest.method == "ptq"
    assert [t.output for t in manifest.tasks] == ["action", "identity", "identity_embedding"]
    assert manifest.models["frame"].inputs[0].dtype == "uint8"
    assert manifest.models["frame"].outputs[0].scale > 0
    path = manifest.save(tmp_path)
    assert Manifest.load(path).to_dict() == manifest.to_dict()
    assert Manifest.from_dict(manifest.to_dict()) == manifest
    mode = stat.S_IMODE(os.stat(path).st_mode)
    assert mode & stat.S_IRGRP  # not the 0600 of a raw temp file
    assert [p for p in os.listdir(tmp_path) if p.startswith(".tmp")] == []


@pytest.mark.parametrize("edit, key", [
    (lambda d: d.update(colour="RGB"), "unknown key colour"),
    (lambda d: d["models"]["frame"]["inputs"][0].update(extra=1),
     "unknown key models.frame.inputs[0].extra"),
    (lambda d: d.pop("clip_length"), "missing key clip_length"),
    (lambda d: d["input"].pop("height"), "missing key input.height"),
    (lambda d: d.update(clip_length="15"), "clip_length must be an integer"),
    (lambda d: d["models"]["head"]["outputs"][1].update(scale="x"),
     "models.head.outputs[1].scale must be a number"),
    (lambda d: d["tasks"][0].update(labels="abc"), "tasks[0].labels must be a list"),
    (lambda d: d.update(method="int4"), "method is 'int4'"),
    (lambda d: d["tasks"][1].update(kind="ranking"), "tasks[1].kind"),
    (lambda d: d["models"].pop("head"), "models has no 'head'"),
    (lambda d: d.update(schema_version=5), "schema_version is 5"),
        (lambda d: d.update(variants={"Edge TPU": {}}), "variants.Edge TPU is not a variant"),
        (lambda d: d.update(variants={"edgetpu": {"backbone": d["models"]["frame"]}}),
         "variants.edgetpu.backbone is not a known model role"),
    (lambda d: d["feature_shape"].append(True), "feature_shape[3] must be an integer"),
])
def test_strict_loading_names_the_key(manifest_dict, edit, key):
    data = copy.deepcopy(manifest_dict)
    edit(data)
    with pytest.raises(EdgekitError) as info:
        Manifest.from_dict(data)
    assert key in str(info.value)


def test_load_errors(tmp_path):
    with pytest.raises(EdgekitError, match="no manifest at"):
        Manifest.load(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(EdgekitError, match="not valid JSON"):
        Manifest.load(tmp_path)


def test_verify(edge_model_dir, tmp_path):
    copy_dir = tmp_path / "m"
    shutil.copytree(edge_model_dir, copy_dir)
    manifest = Manifest.load(copy_dir)
    manifest.verify(copy_dir)
    with open(copy_dir / "head.tflite", "r+b") as handle:  # same size, one byte changed
        handle.seek(100)
        byte = handle.read(1)
        handle.seek(100)
        handle.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(EdgekitError, match="manifest does not match model .*head.tflite"):
        manifest.verify(copy_dir)
    manifest.verify(copy_dir, roles=["frame"])
    os.remove(copy_dir / "frame.tflite")
    with pytest.raises(EdgekitError, match="frame.tflite .* is missing"):
        manifest.verify(copy_dir, roles=["frame"])


def test_version_1_frame_edgetpu_becomes_the_edgetpu_variant(manifest_dict):
    """Model directories written before variants existed still load, their Coral model found."""
    data = copy.deepcopy(manifest_dict)
    data["schema_version"] = 1
    data.pop("variants", None)
    data["models"]["frame_edgetpu"] = dict(data["models"]["frame"], file="frame_edgetpu.tflite")
    manifest = Manifest.from_dict(data)
    assert manifest.schema_version == 4 and "frame_edgetpu" not in manifest.models
    assert manifest.model_file("frame", "edgetpu").file == "frame_edgetpu.tflite"
    assert manifest.model_file("frame").file == "frame.tflite"
    assert [(v, r) for v, r, _ in manifest.all_files()] == [
        ("tflite", "clip"), ("tflite", "frame"), ("tflite", "head"), ("tflite", "step"),
        ("edgetpu", "frame")]


def test_version_3_reads_as_it_is(manifest_dict):
    """Schema 3 (the streaming split before the step model: the LSTM inputs stacked into the
    head) loads unchanged apart from the version."""
    data = copy.deepcopy(manifest_dict)
    data["schema_version"] = 3
    data["models"].pop("step")
    data["window"][-1] = {"input": "lstm_inputs", "source": "lstm_inputs", "reduce": "stack"}
    manifest = Manifest.from_dict(data)
    assert manifest.schema_version == 4
    assert [(w.input, w.reduce) for w in manifest.window] == [("spatial_mean", "mean"),
                                                              ("lstm_inputs", "stack")]
    assert manifest.runtime_roles() == ["frame", "head"]


def test_a_missing_variant_says_how_to_build_it(edge_model_dir):
    manifest = Manifest.load(edge_model_dir)
    with pytest.raises(EdgekitError, match="no edgetpu variant .* --target coral"):
        manifest.model_file("frame", "edgetpu")
    with pytest.raises(EdgekitError, match="lists no backbone model"):
        manifest.model_file("backbone")
