"""quantize.data.clips: labels.json validation, clip-name parsing, scanning and loading."""

import json

import numpy as np
import pytest

from edge.errors import EdgekitError
from edge.video import write_video
from quantize.data.clips import ClipLabels, load_clips, parse_clip_name, scan_clip_folder


def test_parse_clip_name_good_and_bad():
    assert parse_clip_name("freestyle_swimmer2_7.avi") == ("freestyle", "swimmer2", 7)
    assert parse_clip_name("/some/dir/safe_bob_0.MP4") == ("safe", "bob", 0)
    # the same parser as edgekit enroll (edge.clipnames): .mkv/.mov are clips for both
    assert parse_clip_name("freestyle_swimmer2_1.mkv") == ("freestyle", "swimmer2", 1)
    for bad in ["freestyle_swimmer2.avi", "freestyle_swimmer2_x.avi", "a_b_c_1.avi",
                "freestyle_swimmer2_1.webm", "_swimmer_1.avi"]:
        with pytest.raises(EdgekitError, match="action"):
            parse_clip_name(bad)


def test_labels_roundtrip(tmp_path):
    ClipLabels(["a", "b"], ["x"]).save(tmp_path)
    assert ClipLabels.load(tmp_path) == ClipLabels(["a", "b"], ["x"])


@pytest.mark.parametrize("content, message", [
    (None, "not found"),
    ("{not json", "not valid JSON"),
    ('["a"]', "JSON object"),
    ('{"actions": [], "identities": ["x"]}', "non-empty list"),
    ('{"actions": ["a"]}', "identities"),
    ('{"actions": ["a", "a"], "identities": ["x"]}', "more than once"),
    ('{"actions": ["a_b"], "identities": ["x"]}', "contains '_'"),
    ('{"actions": [3], "identities": ["x"]}', "strings"),
])
def test_labels_errors(tmp_path, content, message):
    if content is not None:
        (tmp_path / "labels.json").write_text(content)
    with pytest.raises(EdgekitError, match=message):
        ClipLabels.load(tmp_path)


def _frames(count):
    return np.full((count, 16, 16, 3), 120, np.uint8)


def test_scan_skips_malformed_and_unknown_and_load_skips_short_and_corrupt(tmp_path):
    ClipLabels(["swim", "float"], ["ann", "bob"]).save(tmp_path)
    write_video(tmp_path / "swim_ann_0.avi", _frames(6))
    write_video(tmp_path / "float_bob_1.mp4", _frames(6))
    write_video(tmp_path / "swim_bob_2.avi", _frames(3))       # too short
    (tmp_path / "float_ann_3.avi").write_bytes(b"garbage" * 100)  # undecodable
    write_video(tmp_path / "dive_ann_0.avi", _frames(6))       # unknown action
    write_video(tmp_path / "swim_eve_0.avi", _frames(6))       # unknown identity
    (tmp_path / "notes.txt").write_text("hello")               # malformed name

    index = scan_clip_folder(tmp_path)
    assert [(i.action, i.identity) for i in index.items] == [(1, 0), (1, 1), (0, 0), (0, 1)]
    reasons = {p.split("/")[-1]: r for p, r in index.skipped}
    assert set(reasons) == {"dive_ann_0.avi", "swim_eve_0.avi", "notes.txt"}
    assert "dive" in reasons["dive_ann_0.avi"] and "eve" in reasons["swim_eve_0.avi"]

    arrays = load_clips(index, length=5, stride=1, size=(8, 8))
    assert arrays.x.shape == (2, 5, 8, 8, 3) and arrays.x.dtype == np.uint8
    assert arrays.action.dtype == np.int32 and arrays.identity.dtype == np.int32
    assert [p.split("/")[-1] for p in arrays.paths] == ["float_bob_1.mp4", "swim_ann_0.avi"]
    assert arrays.action.tolist() == [1, 0] and arrays.identity.tolist() == [1, 0]
    skipped = {p.split("/")[-1]: r for p, r in arrays.skipped}
    assert set(skipped) == {"swim_bob_2.avi", "float_ann_3.avi"}
    assert "3 frames" in skipped["swim_bob_2.avi"]


def test_load_raises_when_nothing_is_long_enough(tmp_path):
    ClipLabels(["swim"], ["ann"]).save(tmp_path)
    write_video(tmp_path / "swim_ann_0.avi", _frames(3))
    with pytest.raises(EdgekitError, match="none of the 1 clips"):
        load_clips(scan_clip_folder(tmp_path), length=5)


def test_scan_errors_for_missing_empty_and_all_invalid(tmp_path):
    with pytest.raises(EdgekitError, match="does not exist"):
        scan_clip_folder(tmp_path / "nope")
    ClipLabels(["swim"], ["ann"]).save(tmp_path)
    with pytest.raises(EdgekitError, match="no usable clips"):
        scan_clip_folder(tmp_path)
    (tmp_path / "bad.avi").write_bytes(b"x")
    with pytest.raises(EdgekitError, match="1 files skipped"):
        scan_clip_folder(tmp_path)


def test_synthetic_fixture_folder_loads(swim_clips_dir):
    index = scan_clip_folder(swim_clips_dir)
    assert index.skipped == [] and len(index.items) == 48
    arrays = load_clips(index, length=8, stride=1, size=None)
    assert arrays.x.shape == (48, 8, 32, 32, 3)
    assert np.bincount(arrays.action).tolist() == [12] * 4
    assert np.bincount(arrays.identity).tolist() == [12] * 4
    labels = json.loads((swim_clips_dir / "labels.json").read_text())
    assert labels["actions"] == ["breaststroke", "drowning", "freestyle", "safe"]
