"""How a head input is made from the last T outputs of one frame-model output.

The manifest's ``window`` says, for every head input, which frame output it reads and how
(:class:`edge.manifest.WindowInput`); a stream's :class:`~edge.ringbuffer.FeatureRing` holds one
of these per head input. Two ways, because the streaming split (:mod:`quantize.streaming`) needs
exactly two:

* :class:`StackWindow` ("stack"): the last T outputs, oldest first, converted once per frame into
  the head input's dtype and quantization — the LSTM input projections (head input [1, T, 4u]);
  version-1/2 directories stack whole feature maps this way.
* :class:`MeanWindow` ("mean"): their mean over the window — the spatial branch's time mean. For
  8-bit outputs it keeps the exact integer sum of the window's codes (a push subtracts the code
  leaving the window and adds the new one: integers, so no drift however long the stream runs)
  and turns the sum into the head's int8 input with one table lookup per window
  (``np.take`` into the input tensor). The table rounds the exact mean once, where the clip
  model's int8 AVERAGE_POOL rounds its own mean; both are within half a level of the true mean.

Everything is allocated at construction; per frame a window does one to three vectorised passes
over one output, per decision one or two.
"""

import numpy as np

from edge.errors import EdgekitError
from edge.manifest import TensorSpec
from edge.ringbuffer import Requantizer


class StackWindow(object):
    """The last ``length`` frame outputs of ``shape`` stacked oldest first (a head [1, T, ...])."""

    reduce = "stack"

    def __init__(self, length, shape, src_spec, dst_spec):
        self.convert = Requantizer(src_spec, dst_spec)
        self.slots = np.zeros((int(length),) + tuple(shape), np.dtype(dst_spec.dtype))

    def reset(self):
        """Nothing to forget: a slot is always written before a window reads it."""

    def store(self, slot, output, evicting):
        self.convert(output, self.slots[slot])

    def window_into(self, dst, oldest):
        """Copy the slots oldest-first into ``dst`` (T, ...): two slice copies at most."""
        tail = len(self.slots) - oldest
        np.copyto(dst[:tail], self.slots[oldest:])
        if oldest:
            np.copyto(dst[tail:], self.slots[:oldest])
        return dst


class MeanWindow(object):
    """The mean over the window of a frame output of ``shape`` (a head input [1, ...])."""

    reduce = "mean"

    def __init__(self, length, shape, src_spec, dst_spec):
        self.length = int(length)
        self.src_dtype = np.dtype(src_spec.dtype)
        self.dst_dtype = np.dtype(dst_spec.dtype)
        self.integer = self.src_dtype.itemsize == 1 and self.src_dtype.kind in "iu"
        if self.integer:
            # codes as unsigned offsets (int8 q -> q + 128), so every sum is >= 0 and indexes the
            # table directly; the slot keeps the code that leaves the window T pushes later
            self.offset = 128 if self.src_dtype.kind == "i" else 0
            self.slots = np.zeros((self.length,) + tuple(shape), np.uint8)
            self.sums = np.zeros(tuple(shape), np.int32)
            self.table = mean_table(self.length, self.offset, src_spec, dst_spec)
        elif self.src_dtype.kind == "f":
            self.slots = np.zeros((self.length,) + tuple(shape), np.float32)
            self.mean = np.zeros(tuple(shape), np.float32)
            self.convert = Requantizer(TensorSpec("mean", list(shape), "float32"), dst_spec)
        else:
            raise EdgekitError("cannot average frame outputs of dtype %s into the head's %s "
                               "input; re-run edgekit quantize" % (self.src_dtype, self.dst_dtype))

    def reset(self):
        if self.integer:
            self.sums.fill(0)

    def store(self, slot, output, evicting):
        target = self.slots[slot]
        if not self.integer:
            np.copyto(target, output, casting="unsafe")
            return
        if evicting:
            np.subtract(self.sums, target, out=self.sums)
        if self.offset:
            np.bitwise_xor(output.view(np.uint8), 0x80, out=target)  # q + 128, as uint8
        else:
            np.copyto(target, output)
        np.add(self.sums, target, out=self.sums)

    def window_into(self, dst, oldest):
        if self.integer:
            np.take(self.table, self.sums, out=dst, mode="clip")
            return dst
        # float models: summed afresh per window (an fp32 running sum would drift)
        np.add.reduce(self.slots, axis=0, out=self.mean)
        np.multiply(self.mean, 1.0 / self.length, out=self.mean)
        self.convert(self.mean, dst)
        return dst


def mean_table(length, offset, src_spec, dst_spec):
    """dst code (or float) of the window mean for every sum of ``length`` offset codes."""
    sums = np.arange(255 * length + 1, dtype=np.float64)
    real = (sums / length - offset - float(src_spec.zero_point or 0)) * float(src_spec.scale or 1.0)
    dst_dtype = np.dtype(dst_spec.dtype)
    if dst_dtype.kind == "f":
        return real.astype(dst_dtype)
    scaled = real / float(dst_spec.scale) + float(dst_spec.zero_point or 0)
    rounded = np.sign(scaled) * np.floor(np.abs(scaled) + 0.5)  # half away from zero, as TFLite
    info = np.iinfo(dst_dtype)
    return np.clip(rounded, info.min, info.max).astype(dst_dtype)


WINDOWS = {"stack": StackWindow, "mean": MeanWindow}


def make_window(reduce, length, shape, src_spec, dst_spec):
    """The window object for a manifest ``reduce`` ("stack" or "mean")."""
    try:
        cls = WINDOWS[reduce]
    except KeyError:
        raise EdgekitError("unknown window reduction %r; use one of %s"
                           % (reduce, ", ".join(sorted(WINDOWS))))
    return cls(length, shape, src_spec, dst_spec)
