"""Frame sources: files end cleanly with counts, including videos that break off mid-way."""

import numpy as np
import pytest

from edge.errors import EdgekitError
from edge.sources import FrameSource, classify
from tests.fixtures.edge import make_frames, write_avi


def test_file_source_reads_every_frame_into_one_buffer(edge_video):
    source = FrameSource(edge_video)
    seen, buffers = [], set()
    for index, timestamp, frame in source:
        seen.append((index, round(timestamp, 4)))
        buffers.add(frame.ctypes.data)
        assert frame.shape == (48, 64, 3) and frame.dtype == np.uint8
    assert [i for i, _ in seen] == list(range(20))
    assert seen[1][1] == pytest.approx(1 / 15, abs=1e-3)
    assert len(buffers) == 1  # decoded in place every time
    assert source.stats.to_dict() == {"frames_read": 20, "frames_skipped": 0,
                                      "frames_expected": 20, "frames_missing": 0,
                                      "end": "end of stream"}


def test_video_that_breaks_off_midway(tmp_path):
    data = open(write_avi(tmp_path / "full.avi", make_frames(20)), "rb").read()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[:len(data) // 2])
    source = FrameSource(str(cut))
    frames = sum(1 for _ in source)
    assert 0 < frames < 20
    assert source.stats.frames_read == frames
    assert source.stats.frames_missing == 20 - frames
    assert "broke off" in source.stats.reason


@pytest.mark.parametrize("decode_scale", [1, 2])
def test_corrupt_frame_in_the_middle_is_skipped(tmp_path, decode_scale):
    """Also at decode_scale 2, where a packet that is not a whole JPEG fails imdecode."""
    data = bytearray(open(write_avi(tmp_path / "full.avi", make_frames(20)), "rb").read())
    middle = len(data) // 2
    data[middle:middle + 3000] = b"\0" * 3000
    path = tmp_path / "holed.avi"
    path.write_bytes(bytes(data))
    source = FrameSource(str(path), decode_scale=decode_scale)
    indices = [index for index, _, _ in source]
    assert source.stats.frames_read == len(indices) < 20
    assert indices[-1] > len(indices) - 1 or source.stats.frames_missing > 0


def test_unreadable_sources(tmp_path):
    with pytest.raises(EdgekitError, match="does not exist"):
        FrameSource(str(tmp_path / "none.avi"))
    garbage = tmp_path / "garbage.avi"
    garbage.write_bytes(b"not a video" * 100)
    with pytest.raises(EdgekitError, match="cannot open video source"):
        FrameSource(str(garbage))


def test_classify():
    assert classify("0") == "camera"
    assert classify("rtsp://cam/stream") == "url"
    assert classify("http://x/y.mjpg") == "url"
    assert classify("clip.avi") == "file"
