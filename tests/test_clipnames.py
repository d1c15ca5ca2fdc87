"""edge.clipnames: the one clip-name parser and suffix list, checked against real OpenCV files."""

import os

import cv2
import numpy as np
import pytest

from edge import clipnames
from edge.errors import EdgekitError
from edge.video import read_clip

# The codec OpenCV's FFmpeg backend pairs with each accepted container (MJPG or mp4v, the two
# edgekit writes); the test writes a real file with it and decodes it back through read_clip.
FOURCC = {".avi": "MJPG", ".mp4": "mp4v", ".mkv": "MJPG", ".mov": "mp4v"}


def _write(path, fourcc, frames=6, size=(24, 32)):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 15.0, (size[1], size[0]))
    assert writer.isOpened(), "OpenCV here cannot write %s with %s" % (path, fourcc)
    for i in range(frames):
        writer.write(np.full(size + (3,), 20 * i, np.uint8))
    writer.release()


def test_the_suffix_list_is_exactly_the_containers_we_checked():
    assert set(clipnames.VIDEO_SUFFIXES) == set(FOURCC)


@pytest.mark.parametrize("suffix", sorted(FOURCC))
def test_every_accepted_suffix_is_written_and_decoded_by_opencv_here(tmp_path, suffix):
    path = tmp_path / ("freestyle_swimmer1_3" + suffix)
    _write(path, FOURCC[suffix])
    assert clipnames.parse_clip_name(path) == ("freestyle", "swimmer1", 3)
    clip = read_clip(path, 6)
    assert clip.shape == (6, 24, 32, 3)
    means = [float(frame.mean()) for frame in clip]  # frames 0, 20, ..., 100 grey, lossy codecs
    assert means == sorted(means) and abs(means[-1] - 100) < 10, means


def test_parse_fields_case_and_directory():
    name = clipnames.parse_clip_name("/a/b/safe_bob_12.MOV")
    assert name == clipnames.ClipName("safe", "bob", 12) and name.identity == "bob"


@pytest.mark.parametrize("bad", ["freestyle_swimmer2.avi", "freestyle_swimmer2_x.avi",
                                 "a_b_c_1.avi", "_swimmer_1.avi", "a_b_1.webm", "a_b_1.avi.part",
                                 "a_b_1"])
def test_bad_names_say_the_pattern(bad):
    with pytest.raises(EdgekitError, match=r"<action>_<identity>_<n>\.avi\|mp4\|mkv\|mov"):
        clipnames.parse_clip_name(bad)


def test_format_round_trips_and_refuses_what_would_not_parse():
    assert clipnames.format_clip_name("drowning", "swimmer4", 7, ".mp4") == "drowning_swimmer4_7.mp4"
    for action, identity, suffix in [("a_b", "x", ".avi"), ("a", "", ".avi"), ("a", "x", ".webm")]:
        with pytest.raises(EdgekitError):
            clipnames.format_clip_name(action, identity, 0, suffix)


def test_is_video_file():
    assert clipnames.is_video_file("x/A_B_1.MKV") and not clipnames.is_video_file("labels.json")


def test_scan_sorts_skips_hidden_ignored_and_folders_and_reports_bad_names(tmp_path):
    for name in ["safe_b_1.avi", "free_a_0.mp4", "notes.txt", ".tmp-free_a_1.avi-x.avi",
                 "labels.json", "a_b_c_1.avi"]:
        (tmp_path / name).write_bytes(b"")
    os.mkdir(tmp_path / "sub_dir_1.avi")
    clips, skipped = clipnames.scan_clip_names(tmp_path, ignore=("labels.json",))
    assert [os.path.basename(p) for p, _ in clips] == ["free_a_0.mp4", "safe_b_1.avi"]
    assert clips[0][1] == ("free", "a", 0)
    assert sorted(os.path.basename(p) for p, _ in skipped) == ["a_b_c_1.avi", "notes.txt"]
    assert all("<action>_<identity>_<n>" in reason for _, reason in skipped)
