"""edgekit run / enroll through the real CLI group (edge.cli:main)."""

import json
import os

import numpy as np
import pytest
from click.testing import CliRunner

from edge.cli import main
from edge.gallery import Gallery
from edge.sources import FrameSource
from tests.fixtures.edge import (ACTIONS, CLIP_LENGTH, IDENTITIES, VIDEO_FRAMES, decode_all,
                                 make_frames, write_avi)


def _invoke(*args):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_run_writes_jsonl_and_annotated_video(edge_model_dir, edge_video, tmp_path):
    out = tmp_path / "out.jsonl"
    video = tmp_path / "annotated.avi"
    result = _invoke("run", "--model", edge_model_dir, "--source", edge_video,
                     "--roi", "0,0,32,48", "--roi", "32,0,32,48", "--stride", "2",
                     "--jsonl", str(out), "--write", str(video))
    assert result.exit_code == 0, result.output
    assert "20 frames read, 0 skipped" in result.output
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 2 * len(range(CLIP_LENGTH - 1, VIDEO_FRAMES, 2))
    assert {line["roi"] for line in lines} == {0, 1}
    assert lines[0]["frames"] == [0, CLIP_LENGTH - 1] and lines[0]["box"] == [0, 0, 32, 48]
    assert lines[0]["tasks"]["action"]["label"] in ACTIONS
    written = FrameSource(str(video))
    assert sum(1 for _ in written) == VIDEO_FRAMES
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".tmp")]


def test_enroll_then_run_with_gallery(edge_model_dir, edge_clips_dir, edge_video, tmp_path):
    gallery_path = tmp_path / "gallery.npz"
    result = _invoke("enroll", "--model", edge_model_dir, "--clips", edge_clips_dir,
                     "--out", str(gallery_path), "--threshold", "0.6")
    assert result.exit_code == 0, result.output
    assert "enrolled 8 clips of 4 identities" in result.output
    gallery = Gallery.load(gallery_path)
    assert sorted(gallery.names) == sorted(IDENTITIES)
    assert np.allclose(np.linalg.norm(gallery.embeddings, axis=1), 1.0, atol=1e-5)
    out = tmp_path / "out.jsonl"
    result = _invoke("run", "--model", edge_model_dir, "--source", edge_video,
                     "--gallery", str(gallery_path), "--unknown-threshold", "1.5",
                     "--jsonl", str(out))
    assert result.exit_code == 0, result.output
    matches = [json.loads(line)["match"] for line in out.read_text().splitlines()]
    assert matches and all(m["name"] == "unknown" and m["nearest"] in IDENTITIES
                           for m in matches)


def _one_line_error(result, text):
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("edgekit: error:"), result.output
    assert text in lines[0]
    assert "Traceback" not in result.output


def test_roi_outside_frame(edge_model_dir, edge_video, tmp_path):
    out = tmp_path / "out.jsonl"
    result = _invoke("run", "--model", edge_model_dir, "--source", edge_video,
                     "--roi", "40,0,32,32", "--jsonl", str(out))
    _one_line_error(result, "outside the 64x48 frame")
    assert not out.exists()


def test_bad_inputs_are_one_line_errors(edge_model_dir, edge_video, tmp_path):
    _one_line_error(_invoke("run", "--model", str(tmp_path), "--source", edge_video),
                    "no manifest")
    _one_line_error(_invoke("run", "--model", edge_model_dir, "--source",
                            str(tmp_path / "missing.avi")), "does not exist")
    _one_line_error(_invoke("run", "--model", edge_model_dir, "--source", edge_video,
                            "--roi", "1,2,3"), "bad ROI")
    _one_line_error(_invoke("run", "--model", edge_model_dir, "--source", edge_video,
                            "--stride", "0"), "--stride must be >= 1 (got 0)")
    _one_line_error(_invoke("run", "--model", edge_model_dir, "--source", edge_video,
                            "--device", "tpu"), "unknown device 'tpu'")
    bad_clips = tmp_path / "clips"
    bad_clips.mkdir()
    (bad_clips / "noidentity.avi").write_bytes(b"x")
    _one_line_error(_invoke("enroll", "--model", edge_model_dir, "--clips", str(bad_clips),
                            "--out", str(tmp_path / "g.npz")), "<action>_<identity>_<n>.avi")


def test_written_video_has_boxes_and_labels_drawn(edge_model_dir, edge_video, tmp_path):
    """--write: every frame gets the region boxes; the labels appear from the first window on,
    and the rest of the picture is the source's (up to MJPG re-encoding)."""
    video = tmp_path / "annotated.avi"
    result = _invoke("run", "--model", edge_model_dir, "--source", edge_video,
                     "--roi", "0,0,32,48", "--roi", "32,0,32,48", "--write", str(video))
    assert result.exit_code == 0, result.output
    source = decode_all(edge_video).astype(np.int16)
    written = decode_all(str(video)).astype(np.int16)
    assert written.shape == source.shape
    diff = np.abs(written - source).mean(axis=3)
    first_window = CLIP_LENGTH - 1
    for t in range(len(source)):
        assert diff[t, 16:40, 0].mean() > 15 and diff[t, 16:40, 31].mean() > 15  # box edges
        assert diff[t, 20:44, 4:28].mean() < 8   # inside the box, below the label: untouched
        for x0 in (3, 35):                       # label strip of each region
            strip = diff[t, 3:13, x0:x0 + 26].mean()
            if t >= first_window:
                assert strip > 15, (t, x0, strip)
            else:
                assert strip < 8, (t, x0, strip)


def test_run_on_a_video_that_breaks_off_midway(edge_model_dir, tmp_path):
    """A recording cut in half: clean exit, the windows of the frames that decoded, and counts."""
    data = open(write_avi(tmp_path / "full.avi", make_frames(VIDEO_FRAMES)), "rb").read()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[:len(data) * 3 // 4])
    out = tmp_path / "out.jsonl"
    result = _invoke("run", "--model", edge_model_dir, "--source", str(cut), "--jsonl", str(out))
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    read = int(result.output.split(" frames read")[0].split()[-1])
    assert CLIP_LENGTH <= read < VIDEO_FRAMES
    assert "%d missing" % (VIDEO_FRAMES - read) in result.output
    assert "stream broke off" in result.output
    lines = out.read_text().splitlines()
    assert len(lines) == read - CLIP_LENGTH + 1
    assert "%d windows" % len(lines) in result.output
    assert json.loads(lines[-1])["frames"] == [read - CLIP_LENGTH, read - 1]


def test_run_the_face_model_on_a_video(edge_face_model_dir, edge_face_video, tmp_path):
    """The face instance through ``edgekit run``: one frame per decision, the JSONL and the
    console follow its tasks (age: a value; gender, race: a label with its scores)."""
    from tests.fixtures.edge import FACE_VIDEO_FACES, FACE_VIDEO_HOLD
    from edge.data.utkface import GENDERS, RACES

    out = tmp_path / "face.jsonl"
    video = tmp_path / "face.avi"
    result = _invoke("run", "--model", edge_face_model_dir, "--source", edge_face_video,
                     "--jsonl", str(out), "--write", str(video))
    assert result.exit_code == 0, result.output
    frames = FACE_VIDEO_FACES * FACE_VIDEO_HOLD
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == frames  # N = 1: a window per frame
    assert [line["frames"] for line in lines] == [[i, i] for i in range(frames)]
    for line in lines:
        tasks = line["tasks"]
        assert list(tasks) == ["age", "gender", "race"]
        assert tasks["age"]["kind"] == "regression" and set(tasks["age"]) == {"kind", "value"}
        assert isinstance(tasks["age"]["value"], float)
        assert tasks["gender"]["label"] in GENDERS and list(tasks["gender"]["scores"]) == GENDERS
        assert tasks["race"]["label"] in RACES and list(tasks["race"]["scores"]) == RACES
        assert tasks["race"]["score"] == max(tasks["race"]["scores"].values())
        assert line["match"] is None
    # the video's faces differ, and so do the model's answers
    assert len({line["tasks"]["age"]["value"] for line in lines}) > 1
    ages = [line["tasks"]["age"]["value"] for line in lines]
    assert "%d windows over 1 region(s)" % frames in result.output
    summary = [l.strip() for l in result.output.splitlines() if l.strip().startswith("age:")]
    assert len(summary) == 1 and summary[0].endswith("over %d windows" % frames), result.output
    said = [float(w.strip(",")) for w in summary[0].split()[2:7:2]]  # mean, min, max
    assert said == pytest.approx([sum(ages) / len(ages), min(ages), max(ages)], abs=0.006)
    genders = [line["tasks"]["gender"]["label"] for line in lines]
    assert "gender: " in result.output and all(
        "%s %d" % (g, genders.count(g)) in result.output for g in set(genders))
    assert "race: " in result.output
    assert sum(1 for _ in FrameSource(str(video))) == frames


def test_run_at_a_decode_scale_keeps_regions_in_source_pixels(edge_model_dir, tmp_path):
    """--decode-scale 2 on a 128x96 MJPG file: the regions are given and reported in source
    pixels, and the windows are those of a runner on the reduced frames with halved regions."""
    from edge.runner import StreamingRunner

    video = str(write_avi(tmp_path / "big.avi", make_frames(CLIP_LENGTH + 2, size=(96, 128))))
    out = tmp_path / "out.jsonl"
    result = _invoke("run", "--model", edge_model_dir, "--source", video, "--decode-scale", "2",
                     "--roi", "0,0,64,96", "--roi", "64,0,64,96", "--jsonl", str(out))
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 2 * 3
    assert [line["box"] for line in lines[:2]] == [[0, 0, 64, 96], [64, 0, 64, 96]]
    runner = StreamingRunner(edge_model_dir, rois=[(0, 0, 32, 48), (32, 0, 32, 48)])
    expected = [r for i, _, frame in FrameSource(video, decode_scale=2)
                for r in runner.process(frame, i)]
    for line, want in zip(lines, expected):
        np.testing.assert_allclose(
            [line["tasks"]["action"]["scores"][label] for label in ACTIONS],
            want.tasks["action"].values, atol=1e-6)
    result = _invoke("run", "--model", edge_model_dir, "--source", video, "--decode-scale", "4",
                     "--roi", "64,0,80,96")
    _one_line_error(result, "--roi #1 (decoded at 1/4)")
