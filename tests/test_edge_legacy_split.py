"""Model directories from before the streaming split (manifest version 2: one frame output, the
T feature maps stacked into the head's one input) still load and run as they did, and a window
that names what the models do not have is refused with the reason."""

import json
import os
import shutil

import numpy as np
import pytest

from edge.errors import EdgekitError
from edge.interpreter import make_interpreter
from edge.manifest import Manifest
from edge.runner import StreamingRunner
from tests.fixtures.edge import CLIP_LENGTH, TASKS, decode_all
from tests.fixtures.edge import frame_outputs, run_signature, textbook_window
from tests.test_edge_runner import _collect, _rgb_frames


def test_version_2_directory_gets_its_one_stacked_window(edge_model_dir_legacy):
    manifest = Manifest.load(edge_model_dir_legacy)
    assert manifest.schema_version == 4
    assert [(w.input, w.source, w.reduce) for w in manifest.window] == [
        ("features", "features", "stack")]


def test_version_2_directory_streams_exactly_as_its_head(edge_model_dir_legacy, edge_swim_video):
    frames = decode_all(edge_swim_video)
    results = _collect(StreamingRunner(edge_model_dir_legacy), frames)
    assert len(results) == len(frames) - CLIP_LENGTH + 1
    outputs, head = frame_outputs(edge_model_dir_legacy, _rgb_frames(frames))
    for result in results:
        expected = run_signature(head, textbook_window(edge_model_dir_legacy, outputs, result.first_frame,
                                               result.last_frame))
        for task in TASKS:
            np.testing.assert_array_equal(result.tasks[task].values, expected[task][0])


def test_new_and_old_split_agree_within_int8_error(edge_model_dir, edge_model_dir_legacy,
                                                   edge_swim_video):
    """The same trained run split both ways: the same decisions, up to int8 error."""
    frames = decode_all(edge_swim_video)
    new = _collect(StreamingRunner(edge_model_dir), frames)
    old = _collect(StreamingRunner(edge_model_dir_legacy), frames)
    diff = np.mean([np.abs(a.tasks["action"].values - b.tasks["action"].values).mean()
                    for a, b in zip(new, old)])
    assert diff < 0.12


def _edited(model_dir, tmp_path, edit):
    copy = tmp_path / "m"
    shutil.copytree(model_dir, copy)
    path = copy / "manifest.json"
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))
    return str(copy)


@pytest.mark.parametrize("edit, message", [
    (lambda d: d["window"][1].update(source="nope"), "has no output 'nope'"),
    (lambda d: d["window"][0].update(input="nope"), "has no input 'nope'"),
    (lambda d: d["window"][0].update(reduce="stack"), "head input spatial_mean is"),
    (lambda d: d["window"].pop(), "the window feeds no head input hidden_states"),
    (lambda d: d["models"].pop("step"), "lists no step model"),
    (lambda d: d["window"][1].update(reduce="stack"), "head input hidden_states is"),
    (lambda d: d["window"][0].update(reduce="max"), "window\\[0\\].reduce is 'max'"),
])
def test_a_window_that_does_not_fit_the_models_is_refused(edge_model_dir, tmp_path, edit, message):
    with pytest.raises(EdgekitError, match=message):
        StreamingRunner(_edited(edge_model_dir, tmp_path, edit))


def test_head_of_new_split_reads_the_time_mean(edge_model_dir):
    """The head's spatial input is one feature map (the mean), not T of them."""
    head = make_interpreter(os.path.join(edge_model_dir, "head.tflite"))
    runner = head.get_signature_runner(sorted(head.get_signature_list())[0])
    shapes = {name: list(d["shape"]) for name, d in runner.get_input_details().items()}
    manifest = Manifest.load(edge_model_dir)
    assert shapes["spatial_mean"] == [1] + manifest.feature_shape
    assert shapes["hidden_states"][:2] == [1, CLIP_LENGTH]
