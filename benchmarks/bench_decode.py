"""What the daemon's capture thread spends per frame: decoding vs OpenCV's conversion to BGR.

The daemon's capture thread reads every frame with ``cv2.VideoCapture.read`` (edge/sources.py),
which decodes the frame (``grab``) and converts it from the codec's YUV to BGR (``retrieve``).
On one core that CPU time is taken from the model (``benchmarks/bench_serve.py`` prints it per
thread), so this splits it, as medians of CPU time per frame over the whole file, each way
read ``--passes`` times, the passes interleaved:

- ``grab``: decode only (the frame stays in FFmpeg's YUV buffer);
- ``read``: decode + YUV -> BGR into a reused array, what edgekit's capture does.

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
    """CPU seconds per frame of one pass over ``path`` reading it by ``mode`` (grab | read)."""
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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--video", help="a video file (default: a generated VGA MJPG file)")
    parser.add_argument("--passes", type=int, default=3, help="passes over the file per mode")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="edgekit-decode-") as tmp:
        video = args.video
        if video is None:
            from tests.fixtures.edge import make_frames, write_avi

            video = str(write_avi(os.path.join(tmp, "cam.avi"),
                                  make_frames(150, size=(480, 640))))
        samples = {"grab": [], "read": []}
        shape = None
        for _ in range(args.passes):
            for mode in samples:
                got, frame_shape = per_frame_cpu(video, mode)
                samples[mode] += got
                shape = frame_shape or shape
    grab, read = (float(np.median(samples[m])) * 1e3 for m in ("grab", "read"))
    print("command: %s" % " ".join(["python"] + sys.argv))
    print("video: %s, frames %s, %d frames per mode, OpenCV %s, cv2 threads %d"
          % (args.video or "generated VGA MJPG", shape, len(samples["read"]), cv2.__version__,
             cv2.getNumThreads()))
    print("CPU per frame (medians): decode (grab) %.3f ms; decode + BGR conversion (read) "
          "%.3f ms; the conversion %.3f ms = %.0f %% of read"
          % (grab, read, read - grab, 100 * (read - grab) / read))


if __name__ == "__main__":
    main()
