"""edge.video: reading fixed-length RGB clips and atomic video writing."""

import os

import numpy as np
import pytest

from edge.errors import EdgekitError
from edge.video import ShortClipError, VideoReadError, read_clip, write_video


def _coloured_frames(count, height=24, width=32):
    """Frame i is a flat colour whose red channel encodes i; green/blue fixed to catch BGR swaps."""
    frames = np.zeros((count, height, width, 3), np.uint8)
    frames[..., 0] = (np.arange(count) * 20 + 10)[:, None, None]
    frames[..., 1] = 40
    frames[..., 2] = 200
    return frames


@pytest.mark.parametrize("suffix", [".avi", ".mp4"])
def test_roundtrip_is_rgb_and_in_order(tmp_path, suffix):
    path = tmp_path / ("clip" + suffix)
    write_video(path, _coloured_frames(10))
    clip = read_clip(path, length=10)
    assert clip.shape == (10, 24, 32, 3) and clip.dtype == np.uint8
    means = clip.reshape(10, -1, 3).mean(axis=1)
    np.testing.assert_allclose(means[:, 0], np.arange(10) * 20 + 10, atol=8)
    assert np.all(means[:, 2] > 180) and np.all(means[:, 1] < 70)  # blue stays blue: RGB order


def test_stride_and_resize(tmp_path):
    path = tmp_path / "clip.avi"
    write_video(path, _coloured_frames(10))
    clip = read_clip(path, length=4, stride=3, size=(12, 16))
    assert clip.shape == (4, 12, 16, 3)
    np.testing.assert_allclose(clip[..., 0].mean(axis=(1, 2)), np.array([0, 3, 6, 9]) * 20 + 10, atol=8)


def test_short_clip_reports_available_frames(tmp_path):
    path = tmp_path / "short.avi"
    write_video(path, _coloured_frames(5))
    with pytest.raises(ShortClipError) as info:
        read_clip(path, length=6)
    assert info.value.available == 5
    assert isinstance(info.value, EdgekitError)
    with pytest.raises(ShortClipError):
        read_clip(path, length=3, stride=3)  # needs frames 0, 3, 6


def test_garbage_and_missing_files_raise_video_read_error(tmp_path):
    garbage = tmp_path / "x.avi"
    garbage.write_bytes(b"this is not a video" * 50)
    with pytest.raises(VideoReadError, match="x.avi"):
        read_clip(garbage, length=2)
    with pytest.raises(VideoReadError, match="does not exist"):
        read_clip(tmp_path / "missing.avi", length=2)


def test_write_video_rejects_unknown_suffix_and_leaves_no_temp_files(tmp_path):
    with pytest.raises(EdgekitError, match="unknown suffix"):
        write_video(tmp_path / "clip.mkv", _coloured_frames(2))
    write_video(tmp_path / "ok.avi", _coloured_frames(2))
    assert sorted(os.listdir(tmp_path)) == ["ok.avi"]
