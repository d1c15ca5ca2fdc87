"""Frame sources: a video file, a camera index or an RTSP/HTTP URL, through cv2.VideoCapture.

A source yields ``(frame_index, timestamp_s, frame_bgr)``. The frame array is decoded into the
*same* buffer every time (``cap.read(image=buffer)``), so the runner's per-frame path does not
allocate; a consumer that keeps a frame must copy it.

Streams end cleanly: when decoding fails, the source retries a few times (a dropped packet or a
corrupt frame in the middle of a file), counting each failure as a skipped frame, and stops after
``max_failures`` consecutive failures. ``stats`` then says how many frames were read, skipped and
(for files whose header gives a frame count) missing at the end, e.g. a recording that breaks off
mid-way.

Network cameras (RTSP/HTTP URLs) take ``open_timeout_s`` and ``read_timeout_s``, passed to
OpenCV's FFmpeg backend as ``CAP_PROP_OPEN_TIMEOUT_MSEC`` / ``CAP_PROP_READ_TIMEOUT_MSEC``: a
camera that accepts the connection and then sends nothing makes the open or the read *fail* after
that long (OpenCV's own default is 30 s), so the stream ends with a reason and the caller can
reconnect, instead of a thread stuck in a read that only a watchdog can abandon. A read that
fails counts as a decode failure, and the stream ends once no frame came for ``read_timeout_s``.
"""

import os
import time

import cv2

from edge.errors import EdgekitError
from edge.reduced_decode import ReducedReader, check_scale, fourcc_text, reduced_size


class SourceStats(object):
    __slots__ = ("frames_read", "frames_skipped", "frames_expected", "reason")

    def __init__(self):
        self.frames_read = 0
        self.frames_skipped = 0
        self.frames_expected = None  # from the file header; None for live sources
        self.reason = "not started"

    @property
    def frames_missing(self):
        """Frames the header promised but the stream never delivered (a truncated file)."""
        if self.frames_expected is None:
            return 0
        return max(0, self.frames_expected - self.frames_read - self.frames_skipped)

    def to_dict(self):
        return {"frames_read": self.frames_read, "frames_skipped": self.frames_skipped,
                "frames_expected": self.frames_expected, "frames_missing": self.frames_missing,
                "end": self.reason}


def classify(source):
    """'camera' for an integer index, 'url' for scheme://..., else 'file'."""
    text = str(source).strip()
    if text.isdigit():
        return "camera"
    if "://" in text:
        return "url"
    return "file"


class FrameSource(object):
    """Iterate the frames of ``source`` (path, camera index or URL) as BGR uint8 arrays."""

    def __init__(self, source, max_failures=5, retry_delay_s=0.05, open_timeout_s=None,
                 read_timeout_s=None, decode_scale=1):
        self.source = str(source).strip()
        self.kind = classify(self.source)
        self.max_failures = int(max_failures)
        self.retry_delay_s = float(retry_delay_s)
        self.open_timeout_s = _positive(open_timeout_s, "open_timeout_s")
        self.read_timeout_s = _positive(read_timeout_s, "read_timeout_s")
        self.decode_scale = check_scale(decode_scale)
        self.stats = SourceStats()
        if self.kind == "file" and not os.path.isfile(self.source):
            raise EdgekitError("video source %s does not exist; give a file path, a camera index "
                               "(0) or an rtsp:// or http:// URL" % self.source)
        target = int(self.source) if self.kind == "camera" else self.source
        params = []
        if self.kind == "url":
            if self.open_timeout_s:
                params += [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, int(self.open_timeout_s * 1000)]
            if self.read_timeout_s:
                params += [cv2.CAP_PROP_READ_TIMEOUT_MSEC, int(self.read_timeout_s * 1000)]
        if params:
            self._cap = cv2.VideoCapture(target, cv2.CAP_FFMPEG, params)
        else:
            self._cap = cv2.VideoCapture(target)
        if not self._cap.isOpened():
            self._cap.release()
            within = (" within open_timeout_s = %g s" % self.open_timeout_s
                      if params and self.open_timeout_s else "")
            raise EdgekitError("cannot open video source %s (%s)%s; check the path/URL/camera and "
                               "that OpenCV was built with the needed codec or backend"
                               % (self.source, self.kind, within))
        self.fps = float(self._cap.get(cv2.CAP_PROP_FPS) or 0.0)
        if self.kind == "file":
            count = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
            self.stats.frames_expected = count if count > 0 else None
        self.source_size = (int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH) or 0),
                            int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT) or 0))
        self.width, self.height = self.source_size
        self.fourcc = fourcc_text(self._cap)
        self._reader = None
        self.decode_mode = "full"
        if self.decode_scale > 1:
            self._reader = ReducedReader(self._cap, self.decode_scale)
            self.decode_mode = self._reader.mode
            if self.width and self.height:
                self.width, self.height = reduced_size(self.width, self.height,
                                                       self.decode_scale)
        self._buffer = None
        self._start = None

    def __iter__(self):
        index = 0
        pending = 0  # consecutive decode failures; counted as skipped once a frame decodes again
        self.stats.reason = "running"
        self._start = time.monotonic()
        last_frame = self._start
        try:
            while True:
                if self._reader is not None:
                    ok, frame = self._reader.read()
                elif self._buffer is not None:
                    ok, frame = self._cap.read(self._buffer)
                else:
                    ok, frame = self._cap.read()
                if ok and frame is not None:
                    last_frame = time.monotonic()
                    self._buffer = frame
                    index += pending  # the frames that failed used up their indices: a gap
                    self.stats.frames_skipped += pending
                    pending = 0
                    self.stats.frames_read += 1
                    yield index, self._timestamp(index), frame
                    index += 1
                    continue
                if self._at_end(index + pending):
                    self.stats.reason = "end of stream"
                    if self.stats.frames_missing:
                        self.stats.reason = ("stream broke off after %d frames (%d of the %d "
                                             "frames in the file header never decoded)"
                                             % (index, self.stats.frames_missing,
                                                self.stats.frames_expected))
                    break
                pending += 1
                silent = time.monotonic() - last_frame
                if self.kind == "url" and self.read_timeout_s and silent >= self.read_timeout_s:
                    self.stats.reason = ("stream stalled after %d frames (no frame for %.1f s, "
                                         "read_timeout_s = %g)" % (index, silent,
                                                                   self.read_timeout_s))
                    break
                if pending > self.max_failures:
                    self.stats.reason = ("stream broke off after %d frames (%d consecutive "
                                         "decode failures)" % (index, pending))
                    break
                if self.kind != "file":
                    time.sleep(self.retry_delay_s)
        finally:
            self.close()

    def _at_end(self, index):
        if self.kind != "file":
            return False
        expected = self.stats.frames_expected
        return expected is None or index >= expected

    def _timestamp(self, index):
        if self.kind == "file":
            if self.fps > 0:
                return index / self.fps
            return self._cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
        return time.monotonic() - self._start

    def close(self):
        if self._cap is not None:
            self._cap.release()
        if self.stats.reason == "running":
            self.stats.reason = "stopped"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def _positive(value, name):
    if value is None:
        return None
    value = float(value)
    if not value > 0:
        raise EdgekitError("%s must be > 0 seconds, got %r" % (name, value))
    return value
