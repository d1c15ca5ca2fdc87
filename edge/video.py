"""Reading fixed-length clips from video files and writing small videos, with OpenCV only.

Device side: no TensorFlow here. The network takes ``length`` RGB frames sampled every ``stride``
frames from the start of a file; OpenCV decodes BGR, so every frame is converted once here and the
rest of edgekit only ever sees RGB. Errors a user can cause (a missing or corrupt file, a clip too
short for the model) are :class:`EdgekitError` subclasses so callers can skip-and-report them.
"""

import os

import cv2
import numpy as np

from edge.atomic import atomic_path
from edge.errors import EdgekitError

# Container suffix -> fourcc. MJPG/AVI decodes everywhere OpenCV does; mp4v is the widely
# available MPEG-4 part 2 encoder in pip OpenCV wheels (H.264 usually is not).
FOURCC_BY_SUFFIX = {".avi": "MJPG", ".mp4": "mp4v"}


class VideoReadError(EdgekitError):
    """The file could not be opened or decoded as a video."""


class ShortClipError(EdgekitError):
    """The video decodes but has fewer frames than the clip needs; ``available`` says how many."""

    def __init__(self, message, available):
        super().__init__(message)
        self.available = available


def read_clip(path, length, stride=1, size=None):
    """Return frames 0, stride, 2*stride, ... (``length`` of them) as uint8 (length, H, W, 3) RGB.

    ``size`` is (height, width); frames are resized with INTER_AREA (the right filter for the
    down-scaling we always do). Decoding stops as soon as the last needed frame is read, so long
    recordings cost only what is used.
    """
    length = int(length)
    stride = int(stride)
    if length < 1 or stride < 1:
        raise EdgekitError("read_clip: length and stride must be >= 1 (got length=%d, stride=%d)"
                           % (length, stride))
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise VideoReadError("video file %s does not exist; check the path" % path)
    cap = cv2.VideoCapture(path)
    try:
        if not cap.isOpened():
            raise VideoReadError("cannot open %s as a video (corrupt file or unsupported codec); "
                                 "re-encode it as MJPG .avi or mp4v .mp4" % path)
        needed = (length - 1) * stride + 1
        frames = []
        index = 0
        while index < needed:
            ok, frame = cap.read()
            if not ok or frame is None:
                break
            if index % stride == 0:
                frames.append(_to_rgb(frame, size))
            index += 1
    finally:
        cap.release()
    if index == 0:
        raise VideoReadError("%s opened but no frame could be decoded; the file is corrupt or "
                             "empty, re-encode it" % path)
    if len(frames) < length:
        raise ShortClipError("%s has %d frames but a clip of %d frames with stride %d needs %d; "
                             "use a longer video or a smaller --frames/--stride"
                             % (path, index, length, stride, needed), available=index)
    return np.stack(frames).astype(np.uint8, copy=False)


def _to_rgb(frame_bgr, size):
    """Convert one decoded frame to RGB (3 channels) and optionally resize to (height, width)."""
    if frame_bgr.ndim == 2:
        frame = cv2.cvtColor(frame_bgr, cv2.COLOR_GRAY2RGB)
    elif frame_bgr.shape[2] == 4:
        frame = cv2.cvtColor(frame_bgr, cv2.COLOR_BGRA2RGB)
    else:
        frame = cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2RGB)
    if size is not None:
        height, width = int(size[0]), int(size[1])
        if frame.shape[0] != height or frame.shape[1] != width:
            frame = cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA)
    return frame


def write_video(path, frames_rgb, fps=15):
    """Write uint8 RGB frames (T, H, W, 3) to ``path`` atomically; the suffix picks the codec.

    The file is encoded under a temporary name in the same directory and renamed into place, so a
    crash never leaves a half-written video that a later scan would mistake for a real clip.
    """
    path = os.fspath(path)
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in FOURCC_BY_SUFFIX:
        raise EdgekitError("cannot write video %s: unknown suffix %r; use one of %s"
                           % (path, suffix, ", ".join(sorted(FOURCC_BY_SUFFIX))))
    frames = np.asarray(frames_rgb)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] < 1:
        raise EdgekitError("write_video %s: frames must be (T, H, W, 3) with T >= 1, got shape %s"
                           % (path, frames.shape))
    if frames.dtype != np.uint8:
        frames = np.clip(frames, 0, 255).astype(np.uint8)
    height, width = frames.shape[1:3]
    # OpenCV picks the container from the file name; atomic_path's temp name keeps the suffix.
    with atomic_path(path, suffix=suffix) as tmp:
        writer = cv2.VideoWriter(tmp, cv2.VideoWriter_fourcc(*FOURCC_BY_SUFFIX[suffix]),
                                 float(fps), (int(width), int(height)))
        if not writer.isOpened():
            raise EdgekitError("OpenCV cannot encode %s with fourcc %s in this build; try the "
                               "other format (.avi/.mp4)" % (path, FOURCC_BY_SUFFIX[suffix]))
        try:
            for frame in frames:
                writer.write(cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2BGR))
        finally:
            writer.release()
