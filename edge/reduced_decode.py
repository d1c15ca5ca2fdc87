"""Decoding a stream at 1/N of its width and height, for models that read far fewer pixels.

Why: a camera sends VGA or more, the frame model reads 100x100 or 224x224, and on a one-core
camera the full-size decode is time taken from the model. ``benchmarks/bench_decode.py`` on
edgekit's VGA MJPG camera file (Intel Xeon, 2 MiB L2, medians of CPU time per frame, one run):
decode + BGR conversion 1.059 ms in full, 0.661 ms at 1/4; the daemon on one core went from
68.5 % to 76.0 % of its model-bound rate with it (README, "Decoding at the model's scale").

How, by codec:

* JPEG (MJPEG files such as edgekit's own ``.avi``, and MJPEG over RTSP/HTTP), read through
  OpenCV's FFmpeg backend: the capture hands over each frame's compressed packet
  (``CAP_PROP_FORMAT = -1``) and libjpeg decodes it straight to 1/2, 1/4 or 1/8 scale
  (``cv2.IMREAD_REDUCED_COLOR_N``): the inverse DCT of each 8x8 block keeps only its low
  frequencies, so the frame is never made at full size. That is an area-like reduction: it
  stays within 2 levels (mean absolute difference) of ``cv2.resize(full, INTER_AREA)``
  (tests/test_reduced_decode.py, at 1/2, 1/4 and 1/8).
  Its one allocation per frame is ``cv2.imdecode``'s result (OpenCV's Python binding takes no
  destination for it), 1/N^2 of the full frame.
* Every other stream is decoded in full and reduced with ``INTER_AREA`` into buffers reused per
  frame, in 2x halvings (:func:`edge.preprocess.halve_into`): other codecs (H.264, H.265, mp4v)
  have no reduced decode in FFmpeg, and other backends (OpenCV's V4L2 for a USB camera index,
  even one sending MJPEG) are not asked for packets, because only FFmpeg's raw mode was tested
  here. That costs *more* CPU than the full decode alone (mp4v VGA at 1/4: 1.28 x), but a
  camera's regions (given in source pixels, reduced with the frame by :func:`reduce_box`) then
  mean the same on every source; :attr:`ReducedReader.mode` says which way a stream goes
  (``jpeg`` or ``resize``), ``/stats`` shows it and the daemon logs a warning for ``resize``.

Sizes follow libjpeg's: ceil(W / N) x ceil(H / N), whichever way the frame was reduced.
"""

import numpy as np

from edge.errors import EdgekitError

SCALES = (1, 2, 4, 8)  # cv2 is imported where frames are read: config checks need only these
# fourccs FFmpeg reports for JPEG-per-frame video
JPEG_FOURCCS = frozenset(("MJPG", "mjpg", "JPEG", "jpeg", "AVRN", "LJPG", "dmb1", "AVDJ"))


def check_scale(scale, where="decode_scale"):
    """``scale`` as an int in :data:`SCALES`, or a clear error."""
    if isinstance(scale, bool) or scale not in SCALES:
        raise EdgekitError("%s must be one of %s (decode at 1/N of the source's width and "
                           "height), got %r" % (where, ", ".join(map(str, SCALES)), scale))
    return int(scale)


def reduced_size(width, height, scale):
    """(width, height) of a ``width`` x ``height`` frame decoded at 1/``scale``."""
    return -(-int(width) // scale), -(-int(height) // scale)


def reduce_box(box, scale):
    """A region (x, y, w, h) in source pixels -> the same region in the reduced frame (floored,
    so it stays inside the ceil-sized reduced frame)."""
    return tuple(int(v) // scale for v in box)


def fourcc_text(cap):
    """The stream's codec as its four characters (``MJPG``, ``h264``, ...)."""
    import cv2

    code = int(cap.get(cv2.CAP_PROP_FOURCC) or 0)
    return bytes((code >> shift) & 0xFF for shift in (0, 8, 16, 24)).decode("latin-1")


class ReducedReader(object):
    """Read the frames of an opened ``cv2.VideoCapture`` at 1/``scale`` (2, 4 or 8), BGR.

    ``read()`` has ``VideoCapture.read``'s contract: ``(ok, frame)``; a packet that is not a
    decodable JPEG reads as a failed frame, as a corrupt frame does in a full decode.
    """

    def __init__(self, cap, scale):
        import cv2

        from edge.preprocess import halve_into

        self._cv2 = cv2
        self._halve_into = halve_into
        self.cap = cap
        self.scale = check_scale(scale)
        self.fourcc = fourcc_text(cap)
        # FFmpeg's raw mode is the one tested (files, RTSP/HTTP); other backends (V4L2 for USB
        # cameras) get the full decode and the reduction, so a raw mode that behaves differently
        # there cannot break a camera that works at decode_scale = 1
        jpeg = (self.fourcc in JPEG_FOURCCS and scale > 1
                and cap.getBackendName().upper() == "FFMPEG")
        self.mode = "jpeg" if jpeg and cap.set(cv2.CAP_PROP_FORMAT, -1) else "resize"
        self._flag = {2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4,
                      8: cv2.IMREAD_REDUCED_COLOR_8}.get(self.scale)
        self._full = None      # resize mode: the full frame, decoded into the same array
        self._halves = []      # resize mode: one reused buffer per 2x halving, the last is out
        self._halves_for = None  # the full frame shape they were sized for
        self._packet = None

    def read(self):
        if self.mode == "jpeg":
            ok, packet = self.cap.read(self._packet) if self._packet is not None else \
                self.cap.read()
            if not ok or packet is None or packet.size < 4:
                return False, None
            self._packet = packet
            frame = self._cv2.imdecode(packet, self._flag)
            return frame is not None, frame
        ok, full = self.cap.read(self._full) if self._full is not None else self.cap.read()
        if not ok or full is None:
            return False, None
        self._full = full
        if self._halves_for != full.shape:  # once, and when the stream changes size
            self._halves = _halving_buffers(full.shape, self.scale)
            self._halves_for = full.shape
        return True, self._halve_into(full, self._halves)


def _halving_buffers(shape, scale):
    """Buffers for log2(scale) successive 2x halvings of a frame of ``shape`` (ceil sizes)."""
    height, width = shape[:2]
    buffers = []
    while scale > 1:
        width, height = reduced_size(width, height, 2)
        buffers.append(np.empty((height, width) + tuple(shape[2:]), np.uint8))
        scale //= 2
    return buffers
