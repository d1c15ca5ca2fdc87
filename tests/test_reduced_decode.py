"""Decoding at 1/N (edge.reduced_decode) through FrameSource, on real MJPG and mp4v files."""

import cv2
import numpy as np
import pytest

from edge.errors import EdgekitError
from edge.reduced_decode import check_scale, reduce_box, reduced_size
from edge.sources import FrameSource
from edge.video import write_video
from tests.fixtures.edge import make_frames, write_avi


def full_frames(path):
    return [frame.copy() for _, _, frame in FrameSource(path)]


@pytest.mark.parametrize("scale,size", [(2, (60, 100)), (4, (60, 100)), (8, (64, 128))])
def test_mjpg_frames_decode_reduced_in_the_dct_close_to_an_area_resize(tmp_path, scale, size):
    """100 x 60 is not a multiple of 8: sizes round up, as libjpeg's do. At 1/8 each output
    pixel is one 8x8 block's mean, which an area resize matches only where blocks align."""
    path = str(write_avi(tmp_path / "cam.avi", make_frames(10, size=size, seed=2)))
    source = FrameSource(path, decode_scale=scale)
    assert source.decode_mode == "jpeg" and source.fourcc == "MJPG"
    assert source.source_size == (size[1], size[0])
    assert (source.width, source.height) == reduced_size(size[1], size[0], scale)
    reduced = [frame.copy() for _, _, frame in source]
    assert source.stats.frames_read == 10 and source.stats.reason == "end of stream"
    for full, frame in zip(full_frames(path), reduced):
        assert frame.shape == (source.height, source.width, 3)
        area = cv2.resize(full, (source.width, source.height), interpolation=cv2.INTER_AREA)
        assert np.abs(area.astype(np.int16) - frame).mean() < 2.0


def test_other_codecs_decode_in_full_then_reduce_with_inter_area(tmp_path):
    path = str(tmp_path / "cam.mp4")
    write_video(path, make_frames(6, size=(48, 64), seed=1)[..., ::-1])
    source = FrameSource(path, decode_scale=4)
    assert source.decode_mode == "resize" and source.fourcc != "MJPG"
    frames = [frame.copy() for _, _, frame in source]
    assert len(frames) == 6
    for full, frame in zip(full_frames(path), frames):
        area = cv2.resize(full, (16, 12), interpolation=cv2.INTER_AREA)
        assert frame.shape == (12, 16, 3)
        assert np.abs(area.astype(np.int16) - frame).max() <= 1  # two halvings: rounding apart


def test_scales_and_boxes():
    assert reduce_box((33, 17, 64, 31), 4) == (8, 4, 16, 7)
    assert reduced_size(641, 480, 2) == (321, 240)
    assert check_scale(8) == 8
    for bad in (3, 0, 16, True, "4"):
        with pytest.raises(EdgekitError, match="decode_scale must be one of 1, 2, 4, 8"):
            check_scale(bad)
    with pytest.raises(EdgekitError, match="decode_scale must be one of"):
        FrameSource("0", decode_scale=3)
