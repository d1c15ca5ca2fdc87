"""What the daemon's capture thread spends per frame: decoding vs OpenCV's conversion to BGR.

The daemon's capture thread reads every frame with ``cv2.VideoCapture.read`` (edge/sources.py),
which decodes the frame (``grab``) and converts it from the codec's YUV to BGR (``retrieve``).
On one core that CPU time is taken from the model (``benchmarks/bench_serve.py`` prints it per
thread), so this splits it, as medians of CPU time per frame over the whole file, each way
read ``--passes`` times, the passes interleaved:

- ``grab``: decode only (the frame stays in FFmpeg's YUV buffer);
- ``read``: decode + YUV -> BGR into a reused array, what edgekit's capture does;
- ``1/N`` (``--scales``, default 2 and 4): the frame read by :class:`edge.sources.FrameSource`
  with ``decode_scale = N`` (:mod:`edge.reduced_decode`: reduced in libjpeg's DCT on MJPEG,
  decoded in full and reduced with INTER_AREA on other codecs; the mode is printed).

Without ``--video``, a VGA MJPG file like ``bench_serve.py``'s camera (150 frames of the test
fixtures' moving scene) is written to a temporary directory first.

    python benchmarks/bench_decode.py
    python benchmarks/bench_decode.py --video /path/to/camera.mp4 --passes 5
"""

import argparse
import os
import sys
import tempfile
import time

import cv2
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def per_frame_cpu(path, mode):
    """CPU seconds per frame of one pass over ``path`` reading it by ``mode`` (grab | read |
    an int N: FrameSource at decode_scale N)."""
    if isinstance(mode, int):
        return reduced_cpu(path, mode)
    cap = cv2.VideoCapture(path, cv2.CAP_FFMPEG)
    if not cap.isOpened():
        raise SystemExit("OpenCV cannot open %s" % path)
    samples, frame = [], None
    while True:
        start = time.process_time()
        if mode == "grab":
            ok = cap.grab()
        else:
            ok, got = cap.read(frame) if frame is not None else cap.read()
            frame = got if ok else frame
        if not ok:
            break
        samples.append(time.process_time() - start)
    cap.release()
    return samples, (None if frame is None else frame.shape)


def reduced_cpu(path, scale):
    """CPU seconds per frame of FrameSource(path, decode_scale=scale), and (shape, mode)."""
    from edge.sources import FrameSource

    source = FrameSource(path, decode_scale=scale)
    samples, shape = [], None
    frames = iter(source)
    while True:
        start = time.process_time()
        item = next(frames, None)
        if item is None:
            break
        samples.append(time.process_time() - start)
        shape = item[2].shape
    return samples, (shape, source.decode_mode)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--video", help="a video file (default: a generated VGA MJPG file)")
    parser.add_argument("--passes", type=int, default=3, help="passes over the file per mode")
    parser.add_argument("--scales", default="2,4",
                        help="decode_scale values to time through FrameSource ('' for none)")
    args = parser.parse_args(argv)
    scales = [int(v) for v in args.scales.split(",") if v.strip()]
    with tempfile.TemporaryDirectory(prefix="edgekit-decode-") as tmp:
        video = args.video
        if video is None:
            from tests.fixtures.edge import make_frames, write_avi

            video = str(write_avi(os.path.join(tmp, "cam.avi"),
                                  make_frames(150, size=(480, 640))))
        samples = {mode: [] for mode in ["grab", "read"] + scales}
        shapes = {}
        for _ in range(args.passes):
            for mode in samples:
                got, frame_shape = per_frame_cpu(video, mode)
                samples[mode] += got
                shapes[mode] = frame_shape or shapes.get(mode)
    shape = shapes["read"]
    grab, read = (float(np.median(samples[m])) * 1e3 for m in ("grab", "read"))
    print("command: %s" % " ".join(["python"] + sys.argv))
    print("video: %s, frames %s, %d frames per mode, OpenCV %s, cv2 threads %d"
          % (args.video or "generated VGA MJPG", shape, len(samples["read"]), cv2.__version__,
             cv2.getNumThreads()))
    print("CPU per frame (medians): decode (grab) %.3f ms; decode + BGR conversion (read) "
          "%.3f ms; the conversion %.3f ms = %.0f %% of read"
          % (grab, read, read - grab, 100 * (read - grab) / read))
    for scale in scales:
        reduced = float(np.median(samples[scale])) * 1e3
        frame_shape, mode = shapes[scale]
        print("  decode_scale %d (%s, frames %s): %.3f ms = %.2f x read"
              % (scale, mode, frame_shape, reduced, reduced / read))


if __name__ == "__main__":
    main()
