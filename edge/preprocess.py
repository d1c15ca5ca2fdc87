"""Camera frame -> the frame model's input tensor, in place, with no per-frame allocation.

The manifest says the model takes ``colour_order`` pixels 0..255 at (height, width) and normalises
inside itself, so the device only crops, resizes, reorders channels and quantizes:
``q = clip(round(pixel / scale) + zero_point)`` with the input tensor's scale and zero point (or
the pixel value itself for a float32 input). Pixels are 8-bit, so quantization is a 256-entry
lookup table built once; ``cv2.LUT`` applies it in one vectorised pass. Every step writes into a
buffer allocated at construction (``dst=``), the last one straight into the interpreter's input
tensor, so the hot path allocates nothing.

Resizing uses INTER_AREA, the filter ``edge.video.read_clip`` uses for the training clips, so the
camera sees the same pixels the network was trained on. Resizing comes before the colour swap
because it makes the image smaller.

INTER_AREA at a non-integer ratio (640x480 -> 100x100: 6.4 x 4.8) takes OpenCV's generic
weighted-area path: ~1 ms of CPU per VGA frame, a fifth of the EfficientNet-B3 frame model's
invoke() and alone over the runner's 10 % overhead budget. An exact 2x2 INTER_AREA halving takes
a SIMD fast path instead (~0.08 ms for VGA, ~0.02 ms for the next level), so with
``resize="fast"`` (the default) a large source is halved while both sides of the half stay at
least the model input's (640x480 -> 320x240 -> 160x120, even sides only), then resized to the
input (160x120 -> 100x100) bilinearly, which at a ratio below 2 per side reads every source pixel
and so does not alias: ~0.09 ms for the two halvings and 0.02 ms for the last step, where
INTER_AREA's generic path took 0.11 ms. That is a box pyramid followed by a bilinear resample,
still an anti-aliasing downscaler; on a blurred-noise VGA frame its pixels differ from one
INTER_AREA pass by a mean of ~0.5 levels (max 4; ending in INTER_AREA instead: 0.7), the
difference between two equally valid downscalers, which the int8 network does not notice (the
training clips' own resize depends on whatever size they were recorded at). When no halving
applies (e.g. a 150x150 lane ROI for a 100x100 model, or an odd side) the source gets the single
INTER_AREA pass, bit-identical to ``resize="area"``, which always does that.
"""

import cv2
import numpy as np

from edge.errors import EdgekitError

DTYPE_RANGE = {"uint8": (0, 255), "int8": (-128, 127), "int16": (-32768, 32767)}
RESIZE_MODES = ("fast", "area")


def halving_sizes(height, width, target_height, target_width):
    """(h, w) of each exact 2x2 halving of a (height, width) source that keeps both sides at
    least the target's (the fast path of ``resize="fast"``); [] if none applies."""
    sizes = []
    while height % 2 == 0 and width % 2 == 0 and height // 2 >= target_height \
            and width // 2 >= target_width:
        height, width = height // 2, width // 2
        sizes.append((height, width))
    return sizes


def halve_into(frame, halves):
    """Reduce ``frame`` by 2x INTER_AREA steps into the preallocated ``halves`` (each half the
    size of the one before, rounded up); the last one, or ``frame`` if there are none. Exact 2x2
    halvings take OpenCV's SIMD fast path, where one INTER_AREA resize by 4 takes the generic
    one (``benchmarks/bench_decode.py --video`` an mp4v VGA file at ``decode_scale`` 4: 1.013 ms
    per frame decoded and resized at once, 0.643 ms in two halvings; the two differ by at most
    one level)."""
    for half in halves:
        cv2.resize(frame, (half.shape[1], half.shape[0]), dst=half, interpolation=cv2.INTER_AREA)
        frame = half
    return frame


def parse_roi(text):
    """'x,y,w,h' -> (x, y, w, h) ints; EdgekitError on anything else."""
    parts = [p.strip() for p in str(text).split(",")]
    try:
        values = tuple(int(p) for p in parts)
    except ValueError:
        values = ()
    if len(values) != 4 or values[2] < 1 or values[3] < 1 or values[0] < 0 or values[1] < 0:
        raise EdgekitError("bad ROI %r: expected x,y,w,h as non-negative integers with w,h >= 1, "
                           "e.g. --roi 0,120,640,120" % (text,))
    return values


def check_roi(roi, frame_shape, where="ROI"):
    """EdgekitError if ``roi`` (x, y, w, h) does not lie inside a frame of ``frame_shape``."""
    height, width = int(frame_shape[0]), int(frame_shape[1])
    x, y, w, h = roi
    if x < 0 or y < 0 or w < 1 or h < 1 or x + w > width or y + h > height:
        raise EdgekitError("%s %d,%d,%d,%d lies outside the %dx%d frame (x+w must be <= %d and "
                           "y+h <= %d); fix --roi" % (where, x, y, w, h, width, height, width,
                                                      height))


def quantize_lut(dtype, scale=None, zero_point=None):
    """The 256-entry table pixel value -> input tensor value (``dtype``)."""
    pixels = np.arange(256, dtype=np.float64)
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return pixels.astype(dtype)
    if not scale:
        raise EdgekitError("the frame model's %s input has no quantization scale; the model is "
                           "not a full-integer model, re-run edgekit quantize" % dtype.name)
    low, high = DTYPE_RANGE[dtype.name]
    return np.clip(np.round(pixels / float(scale)) + int(zero_point or 0), low, high).astype(dtype)


class Preprocessor(object):
    """Crop ``roi`` from a frame, resize, reorder channels and quantize into an input tensor.

    ``input_spec`` is the manifest's InputSpec, ``tensor_spec`` the frame model's input
    TensorSpec (dtype/scale/zero_point), ``source_order`` the frames' channel order ("BGR" from
    OpenCV capture, "RGB" from ``edge.video.read_clip``), ``roi`` (x, y, w, h) or None for the
    whole frame. ``resize``: "fast" (2x2 halvings of large sources, then INTER_AREA) or "area"
    (one INTER_AREA pass); see the module docstring.
    """

    def __init__(self, input_spec, tensor_spec, source_order="BGR", roi=None, resize="fast"):
        if resize not in RESIZE_MODES:
            raise EdgekitError("unknown resize mode %r; use fast or area" % (resize,))
        self.resize = resize
        self.height = int(input_spec.height)
        self.width = int(input_spec.width)
        if int(input_spec.channels) != 3:
            raise EdgekitError("the frame model takes %d channels; edgekit run supports 3-channel "
                               "colour models only" % input_spec.channels)
        self.roi = tuple(roi) if roi is not None else None
        self.swap = source_order.upper() != input_spec.colour_order.upper()
        self.dtype = np.dtype(tensor_spec.dtype)
        self.lut = quantize_lut(self.dtype, tensor_spec.scale, tensor_spec.zero_point)
        # uint8 input with scale 1 and zero point 0 is the identity: skip the LUT pass entirely.
        self.identity = self.dtype == np.uint8 and np.array_equal(self.lut, np.arange(256))
        shape = (self.height, self.width, 3)
        self._resized = np.empty(shape, np.uint8)
        self._swapped = np.empty(shape, np.uint8)
        self._checked_shape = None
        self._halves = []  # buffers of the 2x2 halvings, sized at the first frame
        self._last_filter = cv2.INTER_AREA  # of the step to the input size, set with _halves

    def __call__(self, frame, dst):
        """Write ``frame`` (uint8 H x W x 3) preprocessed into ``dst`` (height, width, 3)."""
        if frame.shape != self._checked_shape:
            self._check_frame(frame)
        if self.roi is not None:
            x, y, w, h = self.roi
            frame = frame[y:y + h, x:x + w]  # a view; cv2 reads strided rows directly
        last = not self.swap and self.identity
        if frame.shape[0] != self.height or frame.shape[1] != self.width:
            frame = halve_into(frame, self._halves)  # exact 2x2 box averages: the fast path
            out = dst if last else self._resized
            cv2.resize(frame, (self.width, self.height), dst=out, interpolation=self._last_filter)
            frame = out
        elif last:
            np.copyto(dst, frame)
            return dst
        if self.swap:
            out = dst if self.identity else self._swapped
            cv2.cvtColor(frame, cv2.COLOR_BGR2RGB, dst=out)
            frame = out
        if not self.identity:
            cv2.LUT(frame, self.lut, dst=dst)
        return dst

    def _check_frame(self, frame):
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise EdgekitError("frames must be uint8 H x W x 3 colour images, got %s %s; convert "
                               "the source to 8-bit colour" % (frame.dtype, frame.shape))
        if self.roi is not None:
            check_roi(self.roi, frame.shape)
        height, width = (self.roi[3], self.roi[2]) if self.roi is not None else frame.shape[:2]
        self._halves = []
        if self.resize == "fast":
            self._halves = [np.empty((h, w, 3), np.uint8)
                            for h, w in halving_sizes(height, width, self.height, self.width)]
        self._last_filter = cv2.INTER_AREA
        if self._halves:
            h, w = self._halves[-1].shape[:2]
            if h < 2 * self.height and w < 2 * self.width:  # no source pixel skipped
                self._last_filter = cv2.INTER_LINEAR
        self._checked_shape = frame.shape
