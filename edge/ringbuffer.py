"""The per-stream temporal buffer: what the head needs of the last T frames.

Streaming exists so each frame goes through the (expensive) frame model once, not T times: its
outputs wait here until the window head reads them. The ring keeps the bookkeeping (which slot is
next, which frames and timestamps the window spans, gaps); one window input per head input
(:mod:`edge.window_inputs`: the last T outputs stacked, or their running mean) keeps the data.
Everything is allocated at construction; a push is a few vectorised passes into the next slot,
and each head input is filled with at most two slice copies or one table lookup.

Skipped frames and timestamp gaps: a window must not silently mix frames from before and after a
hole in the stream (a dropped RTSP packet, a camera stall), so a push whose frame index jumps by
more than ``max_skip + 1`` or whose timestamp jumps by more than ``max_gap_s`` is a *gap*. With
``gap_policy="reset"`` the buffer empties and must warm up again (no decision until T new
frames); with ``"hold"`` the buffered features are kept and the next windows span the gap (their
frame range shows it). A frame index that goes backwards (a source restart) always resets.
"""

import functools

import cv2
import numpy as np

from edge.errors import EdgekitError

GAP_POLICIES = ("reset", "hold")


class Requantizer(object):
    """Copy a feature map from the frame model's output dtype/quantization into the head's.

    Separately converted models usually quantize the shared feature map differently; for 8-bit
    features the mapping is a 256-entry table computed once, so a push stays one vectorised pass.
    """

    def __init__(self, src, dst):
        """``src``/``dst``: TensorSpec-like objects with dtype, scale, zero_point."""
        self.src_dtype = np.dtype(src.dtype)
        self.dst_dtype = np.dtype(dst.dtype)
        same = (self.src_dtype == self.dst_dtype and (src.scale or None) == (dst.scale or None)
                and (src.zero_point or 0) == (dst.zero_point or 0))
        self.lut = None
        self._scratch = None
        if same:
            self.mode = "copy"
        elif self.src_dtype.itemsize == 1 and self.src_dtype.kind in "iu":
            self.mode = "lut"
            self.lut = _requant_table(self.src_dtype, src.scale, src.zero_point,
                                      self.dst_dtype, dst.scale, dst.zero_point)
        elif self.src_dtype.kind == "f":
            self.mode = "quantize" if dst.scale else "copy"
            self._dst_scale = float(dst.scale or 0.0)
            self._dst_zp = float(dst.zero_point or 0)
        else:
            raise EdgekitError("cannot convert frame features from %s to the head's %s input; "
                               "re-run edgekit quantize" % (self.src_dtype, self.dst_dtype))

    def bind(self, src, dst):
        """A call with no arguments that converts ``src`` into ``dst`` (arrays that live as long
        as it does, such as an interpreter's held tensors): the flat views and the branch on the
        mode are taken here once, so each call is one vectorised pass and nothing else."""
        if self.mode == "lut":
            return functools.partial(cv2.LUT, src.view(np.uint8).reshape(1, -1), self.lut,
                                     dst.reshape(1, -1))
        if self.mode == "copy":
            return functools.partial(np.copyto, dst, src, casting="unsafe")
        return functools.partial(self, src, dst)

    def __call__(self, src, dst):
        if self.mode == "copy":
            np.copyto(dst, src, casting="unsafe")
        elif self.mode == "lut":
            # cv2.LUT on flat views: in place, no temporaries (np.take would build an intp
            # index array the size of the feature map on every push).
            cv2.LUT(src.view(np.uint8).reshape(1, -1), self.lut, dst=dst.reshape(1, -1))
        else:
            if self._scratch is None or self._scratch.shape != src.shape:
                self._scratch = np.empty(src.shape, np.float32)  # once, at the first push
            scratch = self._scratch
            np.multiply(src, 1.0 / self._dst_scale, out=scratch)
            np.rint(scratch, out=scratch)
            np.add(scratch, self._dst_zp, out=scratch)
            info = np.iinfo(self.dst_dtype)
            np.clip(scratch, info.min, info.max, out=scratch)
            np.copyto(dst, scratch, casting="unsafe")


def _requant_table(src_dtype, src_scale, src_zp, dst_dtype, dst_scale, dst_zp):
    """Table indexed by the *bit pattern* (uint8 view) of a source value -> destination value."""
    codes = np.arange(256, dtype=np.uint8).view(src_dtype).astype(np.float64)
    real = (codes - float(src_zp or 0)) * float(src_scale or 1.0)
    if dst_dtype.kind == "f":
        return real.astype(dst_dtype)
    info = np.iinfo(dst_dtype)
    return np.clip(np.round(real / float(dst_scale)) + float(dst_zp or 0),
                   info.min, info.max).astype(dst_dtype)


class FeatureRing(object):
    """A fixed ring of ``length`` frames feeding the head inputs ``windows`` (window objects of
    :mod:`edge.window_inputs`, in head-input order)."""

    def __init__(self, length, windows, gap_policy="reset", max_skip=0, max_gap_s=None):
        if gap_policy not in GAP_POLICIES:
            raise EdgekitError("unknown gap policy %r; use reset or hold" % (gap_policy,))
        if int(length) < 1:
            raise EdgekitError("clip length must be >= 1, got %s" % length)
        self.length = int(length)
        self.windows = list(windows)
        self.gap_policy = gap_policy
        self.max_skip = int(max_skip)
        self.max_gap_s = None if max_gap_s is None else float(max_gap_s)
        # per slot; Python lists, not arrays: a window reads two of each, and a numpy scalar
        # read costs a cold C call after the frame invoke
        self.frame_index = [-1] * self.length
        self.timestamp = [0.0] * self.length
        self.gaps = 0
        self.resets = 0
        self.reset()

    @classmethod
    def stacked(cls, length, feature_shape, dtype, **gap_options):
        """A ring with one stacked window of ``feature_shape`` in ``dtype`` (tests, tools)."""
        from edge.manifest import TensorSpec
        from edge.window_inputs import StackWindow

        spec = TensorSpec("features", list(feature_shape), np.dtype(dtype).name)
        return cls(length, [StackWindow(length, feature_shape, spec, spec)], **gap_options)

    def reset(self):
        """Forget everything buffered; the next ``length`` pushes warm the ring up again."""
        self._next = 0          # slot the next push writes
        self.count = 0          # valid slots (<= length)
        self.since_reset = 0    # pushes since the last reset (decides when a window is due)
        self._last_index = None
        self._last_time = None
        for window in self.windows:
            window.reset()

    @property
    def is_warm(self):
        return self.count == self.length

    def is_gap(self, frame_index, timestamp):
        """Would a push at (frame_index, timestamp) be a gap after the last push?"""
        if self._last_index is None:
            return False
        if frame_index <= self._last_index or frame_index - self._last_index > self.max_skip + 1:
            return True
        return (self.max_gap_s is not None and timestamp is not None
                and self._last_time is not None and timestamp - self._last_time > self.max_gap_s)

    def push(self, outputs, frame_index, timestamp=None):
        """Store one frame's outputs (one array per window, in window order).

        Returns True if a gap was detected before this push.
        """
        gap = self.is_gap(frame_index, timestamp)
        if gap:
            self.gaps += 1
            if self.gap_policy == "reset" or frame_index <= self._last_index:
                self.resets += 1
                self.reset()
        slot = self._next
        evicting = self.count == self.length
        for window, output in zip(self.windows, outputs):
            window.store(slot, output, evicting)
        self.frame_index[slot] = int(frame_index)
        self.timestamp[slot] = -1.0 if timestamp is None else float(timestamp)
        self._next = (slot + 1) % self.length
        if self.count < self.length:
            self.count += 1
        self.since_reset += 1
        self._last_index = frame_index
        self._last_time = timestamp
        return gap

    def due(self, stride):
        """True when warm and ``stride`` pushes have passed since the previous window."""
        return self.is_warm and (self.since_reset - self.length) % int(stride) == 0

    def _oldest(self):
        return self._next if self.count == self.length else 0

    def window_into(self, i, dst):
        """Fill ``dst`` (head input ``i`` without its batch axis) from the buffered window."""
        if not self.is_warm:
            raise EdgekitError("the feature ring is not warm yet (%d of %d frames)"
                               % (self.count, self.length))
        return self.windows[i].window_into(dst, self._oldest())

    def ordered(self, i=0):
        """A new array of stacked window ``i`` oldest-first (tests and debugging; allocates)."""
        return self.window_into(i, np.empty_like(self.windows[i].slots))

    def frame_range(self):
        """(first, last) frame index and (first, last) timestamp of the buffered window."""
        start = self._oldest()
        end = (self._next - 1) % self.length
        return ((self.frame_index[start], self.frame_index[end]),
                (self.timestamp[start], self.timestamp[end]))
