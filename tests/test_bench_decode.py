"""benchmarks/bench_decode.py reads a real video file both ways and prints the split."""

from benchmarks.bench_decode import main, per_frame_cpu
from tests.fixtures.edge import make_frames, write_avi


def test_decode_split_reads_every_frame_both_ways(tmp_path, capsys):
    video = str(write_avi(tmp_path / "cam.avi", make_frames(12, size=(48, 64))))
    grabbed, _ = per_frame_cpu(video, "grab")
    read, shape = per_frame_cpu(video, "read")
    assert len(grabbed) == len(read) == 12 and shape == (48, 64, 3)
    reduced, (shape, mode) = per_frame_cpu(video, 4)
    assert len(reduced) == 12 and shape == (12, 16, 3) and mode == "jpeg"
    main(["--video", video, "--passes", "1", "--scales", "2"])
    out = capsys.readouterr().out
    assert "12 frames per mode" in out and "decode (grab)" in out and "BGR conversion" in out
    assert "decode_scale 2 (jpeg, frames (24, 32, 3))" in out
