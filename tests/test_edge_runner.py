"""The streaming runner: parity with head.tflite, clip.tflite and the float model; ROIs; stride;
gaps; allocation-free hot path."""

import os
import tracemalloc

import cv2
import numpy as np
import pytest

from edge.errors import EdgekitError
from edge.gallery import Gallery
from edge.interpreter import make_interpreter
from edge.manifest import Manifest
from edge.runner import StreamingRunner
from edge.tflite_inspect import signature_indices
from tests.fixtures.edge import (ACTIONS, CLIP_LENGTH, HEIGHT, TASKS, WIDTH, decode_all,
                                 frame_outputs, run_signature, textbook_window)


def _rgb_input(frame_bgr, roi=None):
    """Independent reference preprocessing: crop, BGR->RGB, INTER_AREA resize to the input."""
    if roi is not None:
        x, y, w, h = roi
        frame_bgr = frame_bgr[y:y + h, x:x + w]
    rgb = cv2.cvtColor(np.ascontiguousarray(frame_bgr), cv2.COLOR_BGR2RGB)
    return cv2.resize(rgb, (WIDTH, HEIGHT), interpolation=cv2.INTER_AREA)


def _collect(runner, frames, **kwargs):
    results = []
    for i, frame in enumerate(frames):
        results.extend(runner.process(frame, frame_index=i, **kwargs))
    return results


def _rgb_frames(frames_bgr):
    return np.stack([_rgb_input(f) for f in frames_bgr])


def test_streaming_equals_head_on_the_textbook_window(edge_model_dir, edge_swim_video):
    """Exact: the runner's outputs are head.tflite's on the window the textbook way made of
    frame.tflite's outputs (the feature maps' time mean; the hidden states of step.tflite run
    over just the window's frames from a zero state, where the runner advances T windows per
    frame)."""
    frames = decode_all(edge_swim_video)
    runner = StreamingRunner(edge_model_dir)
    assert [w.reduce for w in runner.manifest.window] == ["mean", "recurrent"]
    results = _collect(runner, frames)
    assert len(results) == len(frames) - CLIP_LENGTH + 1
    outputs, head = frame_outputs(edge_model_dir, _rgb_frames(frames))
    for result in results:
        assert result.last_frame - result.first_frame + 1 == CLIP_LENGTH
        expected = run_signature(head, textbook_window(edge_model_dir, outputs, result.first_frame,
                                               result.last_frame))
        for task in TASKS:
            np.testing.assert_array_equal(result.tasks[task].values, expected[task][0])
    # the windows really differ, so a mis-ordered ring or a wrong window would show above
    probs = np.stack([r.tasks["action"].values for r in results])
    assert (probs.max(axis=0) - probs.min(axis=0)).max() > 0.2


def _distance(result, outputs):
    """Mean |difference| of the class probabilities plus (1 - cosine) of the embeddings."""
    diff = [np.abs(result.tasks[t].values - outputs[t]).mean() for t in ("action", "identity")]
    return float(np.mean(diff)), 1.0 - float(np.dot(result.embedding,
                                                     outputs["identity_embedding"]))


def test_streaming_matches_clip_model_within_int8_tolerance(edge_model_dir, edge_swim_video):
    """clip.tflite is calibrated on its own, so it agrees only within int8 error; and it agrees
    with the runner on the *same* window much better than on a window 4 frames off."""
    frames = decode_all(edge_swim_video)
    results = _collect(StreamingRunner(edge_model_dir), frames)
    clip = make_interpreter(os.path.join(edge_model_dir, "clip.tflite"))
    rgb = _rgb_frames(frames)
    outputs = [{k: v[0] for k, v in run_signature(clip, {"clip": rgb[i:i + CLIP_LENGTH][None]}).items()}
               for i in range(len(frames) - CLIP_LENGTH + 1)]
    same, shifted = [], []
    for result in results:
        i = result.first_frame
        same.append(_distance(result, outputs[i]))
        shifted.append(_distance(result, outputs[i + 4 if i + 4 < len(outputs) else i - 4]))
    same, shifted = np.array(same), np.array(shifted)
    assert same[:, 0].mean() < 0.12 and same[:, 0].max() < 0.25   # probabilities
    assert same[:, 1].mean() < 0.1                                # embedding: cosine > 0.9
    assert same.mean(axis=0)[0] < 0.7 * shifted.mean(axis=0)[0]
    assert same.mean(axis=0)[1] < 0.7 * shifted.mean(axis=0)[1]


def test_streaming_matches_float_model_within_quantization_tolerance(edge_model_dir, edge_run_dir,
                                                                     edge_swim_video):
    """The float Keras model of the run, on the same windows, within this tiny network's int8
    error (16-channel features calibrated on 32 frames: probabilities differ by ~0.15 on
    average, embeddings keep cosine ~0.8)."""
    from quantize.runs import load_run_model

    model, _ = load_run_model(edge_run_dir)
    frames = decode_all(edge_swim_video)
    results = _collect(StreamingRunner(edge_model_dir), frames)
    rgb = _rgb_frames(frames).astype(np.float32)
    windows = np.stack([rgb[r.first_frame:r.last_frame + 1] for r in results])
    expected = {k: np.asarray(v) for k, v in model.clip(windows, training=False).items()}
    distances = np.array([_distance(r, {k: v[n] for k, v in expected.items()})
                          for n, r in enumerate(results)])
    assert distances[:, 0].mean() < 0.2 and distances[:, 1].mean() < 0.3
    agree = np.mean([r.tasks["action"].label == ACTIONS[int(np.argmax(expected["action"][n]))]
                     for n, r in enumerate(results)])
    assert agree >= 0.5


def test_int8_input_model_gives_same_decisions_path(edge_model_dir_int8, edge_swim_video):
    """An int8-pixel frame model goes through the quantization LUT; parity with its head holds."""
    frames = decode_all(edge_swim_video)[:CLIP_LENGTH + 3]
    runner = StreamingRunner(edge_model_dir_int8)
    assert not runner._preprocessors[0].identity  # pixels really go through the table
    results = _collect(runner, frames)
    assert len(results) == 4
    outputs, head = frame_outputs(edge_model_dir_int8, _rgb_frames(frames))
    assert Manifest.load(edge_model_dir_int8).models["frame"].inputs[0].dtype == "int8"
    for result in results:
        expected = run_signature(head, textbook_window(edge_model_dir_int8, outputs, result.first_frame,
                                               result.last_frame))
        for task in TASKS:
            np.testing.assert_array_equal(result.tasks[task].values, expected[task][0])


def test_head_state_does_not_leak_between_windows(edge_model_dir, edge_swim_video):
    """A window's result does not depend on what the head ran before: the windows of a whole
    video vs the same window alone in a fresh runner, and a head invoked twice. head.tflite's LSTM
    is unrolled, so the model holds no state between invokes (a fused LSTM kept it in variable
    tensors; the runner still resets them for artifacts made that way)."""
    frames = decode_all(edge_swim_video)
    head = make_interpreter(os.path.join(edge_model_dir, "head.tflite"))
    runner = head.get_signature_runner(sorted(head.get_signature_list())[0])
    outputs, _ = frame_outputs(edge_model_dir, _rgb_frames(frames[:CLIP_LENGTH]))
    window = textbook_window(edge_model_dir, outputs, 0, CLIP_LENGTH - 1)
    first = runner(**window)["identity_embedding"].copy()
    second = runner(**window)["identity_embedding"].copy()
    np.testing.assert_array_equal(first, second)  # stateless head: no variable tensors
    late = _collect(StreamingRunner(edge_model_dir), frames)[-1]
    start = late.first_frame
    alone = _collect(StreamingRunner(edge_model_dir), frames[start:start + CLIP_LENGTH])
    assert len(alone) == 1
    for task in TASKS:
        np.testing.assert_array_equal(late.tasks[task].values, alone[0].tasks[task].values)


def test_head_variables_are_reset_only_for_heads_with_a_stateful_op(edge_model_dir, edge_video,
                                                                    tmp_path, monkeypatch):
    """The manifest's ops decide: edgekit's heads hold no state, so no reset per window; a head
    listing a fused LSTM, or a manifest without ops, gets one before every window."""
    import json
    import shutil

    from edge.session import ModelSession

    frames = decode_all(edge_video)[:CLIP_LENGTH + 2]
    plain = ModelSession(edge_model_dir)
    assert not plain.head_has_state
    expected = _collect(StreamingRunner(session=plain), frames)
    for ops in (["UNIDIRECTIONAL_SEQUENCE_LSTM"], None):
        copy = tmp_path / ("m-%s" % bool(ops))
        shutil.copytree(edge_model_dir, copy)
        manifest = json.loads((copy / "manifest.json").read_text())
        if ops:
            manifest["models"]["head"]["ops"] += ops
        else:
            del manifest["models"]["head"]["ops"]
        (copy / "manifest.json").write_text(json.dumps(manifest))
        session = ModelSession(str(copy))
        assert session.head_has_state
        resets = []
        monkeypatch.setattr(session.head_interpreter, "reset_all_variables",
                            lambda: resets.append(1), raising=False)
        results = _collect(StreamingRunner(session=session), frames)
        assert len(resets) == len(results) == len(expected) == 3
        for got, want in zip(results, expected):
            for task in TASKS:
                np.testing.assert_array_equal(got.tasks[task].values, want.tasks[task].values)


def test_stride_and_warm_up(edge_model_dir, edge_video):
    frames = decode_all(edge_video)
    results = _collect(StreamingRunner(edge_model_dir, stride=3), frames)
    last_frames = [r.last_frame for r in results]
    assert last_frames == list(range(CLIP_LENGTH - 1, len(frames), 3))
    assert all(r.first_frame == r.last_frame - CLIP_LENGTH + 1 for r in results)


def test_every_frame_runs_frame_model_once_per_roi(edge_model_dir, edge_video, monkeypatch):
    frames = decode_all(edge_video)[:CLIP_LENGTH + 5]
    runner = StreamingRunner(edge_model_dir, rois=[(0, 0, 32, 32), (20, 10, 40, 30)], stride=2)
    calls = {"frame": 0, "head": 0}
    frame_invoke, head_invoke = runner.frame_interpreter.invoke, runner.head_interpreter.invoke

    def count(name, fn):
        def wrapped():
            calls[name] += 1
            return fn()
        return wrapped

    monkeypatch.setattr(runner.frame_interpreter, "invoke", count("frame", frame_invoke),
                        raising=False)
    monkeypatch.setattr(runner.head_interpreter, "invoke", count("head", head_invoke),
                        raising=False)
    results = _collect(runner, frames)
    assert calls["frame"] == 2 * len(frames)
    windows_per_roi = len(range(CLIP_LENGTH - 1, len(frames), 2))
    assert calls["head"] == len(results) == 2 * windows_per_roi


def test_rois_each_equal_a_runner_on_the_cropped_video(edge_model_dir, edge_video):
    frames = decode_all(edge_video)[:CLIP_LENGTH + 2]
    rois = [(0, 0, 32, 48), (30, 8, 34, 40)]
    results = _collect(StreamingRunner(edge_model_dir, rois=rois), frames)
    assert {r.roi_index for r in results} == {0, 1}
    for index, (x, y, w, h) in enumerate(rois):
        crops = [np.ascontiguousarray(f[y:y + h, x:x + w]) for f in frames]
        alone = _collect(StreamingRunner(edge_model_dir), crops)
        mine = [r for r in results if r.roi_index == index]
        assert [r.roi for r in mine] == [rois[index]] * len(alone)
        for a, b in zip(mine, alone):
            np.testing.assert_array_equal(a.embedding, b.embedding)
            assert a.tasks["action"].label == b.tasks["action"].label


def test_roi_outside_frame_is_a_clear_error(edge_model_dir, edge_video):
    frame = decode_all(edge_video)[0]
    runner = StreamingRunner(edge_model_dir, rois=[(40, 0, 32, 32)])
    with pytest.raises(EdgekitError, match="outside the 64x48 frame"):
        runner.process(frame)


def test_gap_reset_and_hold(edge_model_dir, edge_video):
    frames = decode_all(edge_video)
    T = CLIP_LENGTH
    before = list(range(T + 1))  # T + 1 frames, then 2 dropped, then the rest
    after = list(range(T + 3, T + 3 + len(frames) - len(before)))
    indices = before + after
    reset = StreamingRunner(edge_model_dir, gap_policy="reset")
    hold = StreamingRunner(edge_model_dir, gap_policy="hold")
    out_reset, out_hold = [], []
    for frame, index in zip(frames, indices):
        out_reset += reset.process(frame, frame_index=index)
        out_hold += hold.process(frame, frame_index=index)
    # reset: two windows before the gap, then a fresh warm-up after it
    assert [(r.first_frame, r.last_frame) for r in out_reset] == (
        [(0, T - 1), (1, T)] + [(after[i], after[i + T - 1]) for i in range(len(after) - T + 1)])
    # hold: every push after warm-up gives a window; windows spanning the hole say so
    expected = [(indices[i], indices[i + T - 1], indices[i] < after[0] <= indices[i + T - 1])
                for i in range(len(indices) - T + 1)]
    assert [(r.first_frame, r.last_frame, r.gap) for r in out_hold] == expected
    assert any(gap for _, _, gap in expected) and not expected[-1][2]
    assert reset.rings[0].gaps == hold.rings[0].gaps == 1


def test_gallery_match_in_results(edge_model_dir, edge_video):
    frames = decode_all(edge_video)[:CLIP_LENGTH]
    probe = _collect(StreamingRunner(edge_model_dir), frames)[0].embedding
    other = np.roll(probe, 3) * -1.0
    gallery = Gallery.from_samples([("ana", probe), ("ben", other)], threshold=0.9)
    results = _collect(StreamingRunner(edge_model_dir, gallery=gallery), frames)
    assert results[0].match.name == "ana" and results[0].match.similarity > 0.99
    strict = _collect(StreamingRunner(edge_model_dir, gallery=gallery, unknown_threshold=1.01),
                      frames)
    assert strict[0].match.name == "unknown" and strict[0].match.nearest == "ana"


def test_result_records_and_timings(edge_model_dir, edge_video):
    result = _collect(StreamingRunner(edge_model_dir), decode_all(edge_video)[:CLIP_LENGTH])[0]
    data = result.to_dict()
    assert data["frames"] == [0, CLIP_LENGTH - 1]
    assert set(data["tasks"]) == set(TASKS)
    action = result.tasks["action"]
    assert data["tasks"]["action"]["label"] == action.label
    assert data["tasks"]["action"]["scores"] == {
        label: pytest.approx(float(v), abs=1e-6) for label, v in zip(ACTIONS, action.values)}
    assert data["tasks"]["identity_embedding"]["kind"] == "embedding"
    assert abs(sum(action.values) - 1.0) < 0.02
    assert set(result.timings) == {"preprocess", "frame_model", "step", "head"}
    assert all(v >= 0 for v in result.timings.values())


def test_output_tensors_resolved_by_signature_name(edge_model_dir):
    runner = StreamingRunner(edge_model_dir)
    sig = signature_indices(runner.head_interpreter)
    assert [(t.name, i) for t, i, _, _, _ in runner.session.tasks] == [
        (name, sig["outputs"][name]) for name in TASKS]


def test_hot_path_does_not_grow_memory(edge_model_dir, edge_video):
    frames = decode_all(edge_video)
    runner = StreamingRunner(edge_model_dir, rois=[(0, 0, 32, 32), (10, 5, 50, 40)], stride=1000)
    ring_buffers = [w.slots for w in runner.rings[0].windows]
    _collect(runner, frames[:CLIP_LENGTH + 1])  # warm: first-frame checks done
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        for i in range(200):
            runner.process(frames[i % len(frames)], frame_index=CLIP_LENGTH + 1 + i)
        after, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert after - before < 2048       # nothing retained per frame
    assert peak - before < 16 * 1024   # and no big temporaries (a 32x32x3 copy is 3 KB)
    assert all(w.slots is b for w, b in zip(runner.rings[0].windows, ring_buffers))


def test_manifest_model_mismatch_is_caught(edge_model_dir, tmp_path):
    import shutil
    broken = tmp_path / "m"
    shutil.copytree(edge_model_dir, broken)
    shutil.copy(os.path.join(edge_model_dir, "clip.tflite"), broken / "head.tflite")
    with pytest.raises(EdgekitError, match="manifest does not match model"):
        StreamingRunner(str(broken))
    # even with verification off, the tensor specs give the swap away
    with pytest.raises(EdgekitError, match="manifest does not match model"):
        StreamingRunner(str(broken), verify=False)


def test_runners_share_one_model_session_and_keep_their_streams_apart(edge_model_dir,
                                                                      edge_swim_video,
                                                                      edge_video):
    """N cameras load the models once; interleaving two streams (in two threads, as the daemon's
    workers do) gives each exactly what it gets alone."""
    import threading

    swim = decode_all(edge_swim_video)[:CLIP_LENGTH + 6]
    other = decode_all(edge_video)[:CLIP_LENGTH + 6]
    alone = [_collect(StreamingRunner(edge_model_dir), f) for f in (swim, other)]
    a, b = StreamingRunner(edge_model_dir), StreamingRunner(edge_model_dir, stride=1)
    assert a.session is b.session and a.frame_interpreter is b.frame_interpreter
    assert a.rings[0] is not b.rings[0]
    got = [[], []]

    def stream(runner, frames, out):
        for i, frame in enumerate(frames):
            out.extend(runner.process(frame, frame_index=i))

    threads = [threading.Thread(target=stream, args=(r, f, o))
               for r, f, o in ((a, swim, got[0]), (b, other, got[1]))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for mine, reference in zip(got, alone):
        assert len(mine) == len(reference) == 7
        for x, y in zip(mine, reference):
            for name in y.tasks:
                np.testing.assert_array_equal(x.tasks[name].values, y.tasks[name].values)


def test_run_clip_is_a_pure_call_that_leaves_the_stream_alone(edge_model_dir, edge_swim_video):
    frames = decode_all(edge_swim_video)
    reference = _collect(StreamingRunner(edge_model_dir), frames[:CLIP_LENGTH + 6])
    runner = StreamingRunner(edge_model_dir)
    got = _collect(runner, frames[:CLIP_LENGTH])
    clip = runner.run_clip(frames[5:5 + CLIP_LENGTH][..., ::-1])  # RGB, another window
    assert runner.frames == CLIP_LENGTH and runner.windows == 1
    for i in range(CLIP_LENGTH, CLIP_LENGTH + 3):
        got.extend(runner.process(frames[i], frame_index=i))
    assert [r.last_frame for r in got] == [r.last_frame for r in reference[:4]]
    np.testing.assert_array_equal(got[-1].tasks["action"].values,
                                  reference[3].tasks["action"].values)
    np.testing.assert_array_equal(clip.tasks["action"].values, reference[5].tasks["action"].values)


def test_stride_zero_is_refused_not_replaced(edge_model_dir):
    with pytest.raises(EdgekitError, match="stride must be >= 1 \\(got 0\\)"):
        StreamingRunner(edge_model_dir, stride=0)
