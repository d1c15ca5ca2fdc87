"""How a head input is made from the last T outputs of one frame-model output.

The manifest's ``window`` says, for every head input, which frame output it reads and how
(:class:`edge.manifest.WindowInput`); a stream's :class:`~edge.ringbuffer.FeatureRing` holds one
of these per head input. Three ways, the ones the streaming split (:mod:`quantize.streaming`)
needs:

* :class:`StackWindow` ("stack"): the last T outputs, oldest first, converted once per frame into
  the head input's dtype and quantization; schema-3 directories stack the LSTM input
  projections this way (head input [1, T, 4u]), version-1/2 ones whole feature maps.
* :class:`~edge.recurrence.RecurrentWindow` ("recurrent"): the LSTM's hidden states over the
  window, advanced a step per frame for all T windows at once by the step model
  (:mod:`edge.recurrence`; head input [1, T, u]).
* :class:`MeanWindow` ("mean"): their mean over the window — the spatial branch's time mean. For
  8-bit outputs it keeps the exact integer sum of the window's codes (a push subtracts the code
  leaving the window and adds the new one: integers, so no drift however long the stream runs)
  and turns the sum into the head's input once per window. The heads ``edgekit quantize``
  writes (int8 weights, float activations) take the mean in float: ``sum * scale / T - zero
  point * scale`` in one ``cv2.addWeighted`` pass (float32 rounding of an exact sum, nothing
  that grows with time). The table lookup below first writes a 48 KB index array: as the float
  head's fill, the stage "head input mean" of ``benchmarks/bench_streaming.py --stages 600``
  took 17.4-17.9 us, the one pass 4.9-6.4 us (B3 swim 4x4x384, AMD EPYC with AVX-512, 1 MiB L2
  per core; README, "The runner's overhead on a faster CPU"). An int8 head
  (older directories) gets a table lookup (``np.take`` into the input tensor) that rounds the
  exact mean once, where the clip model's int8 AVERAGE_POOL rounds its own mean, both within
  half a level of the true mean.
  Codes and sums are int16 (T <= 128), so a push is three same-type vectorised passes: on the B3
  swim model (4x4x384), right after a frame invoke, 0.049 ms where int32 sums of uint8 codes took
  0.066 ms (stage timers around StreamingRunner.process, medians of 300 pushes).

Everything is allocated at construction; per frame a window does one to three vectorised passes
over one output, per decision one or two.
"""

import cv2
import numpy as np

from edge.errors import EdgekitError
from edge.manifest import TensorSpec
from edge.recurrence import RecurrentWindow
from edge.ringbuffer import Requantizer


class StackWindow(object):
    """The last ``length`` frame outputs of ``shape`` stacked oldest first (a head [1, T, ...])."""

    reduce = "stack"

    def __init__(self, length, shape, src_spec, dst_spec, step=None):
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

    def __init__(self, length, shape, src_spec, dst_spec, step=None):
        self.length = int(length)
        self.src_dtype = np.dtype(src_spec.dtype)
        self.dst_dtype = np.dtype(dst_spec.dtype)
        self.integer = self.src_dtype.itemsize == 1 and self.src_dtype.kind in "iu"
        if self.integer:
            # the slot keeps the code that leaves the window T pushes later; codes and sums in
            # int16 where the sum fits (T <= 128), so every pass is one same-type SIMD loop
            self.offset = 128 if self.src_dtype.kind == "i" else 0
            wide = np.int16 if 256 * self.length < 32768 else np.int32
            self.slots = np.zeros((self.length,) + tuple(shape), wide)
            self.sums = np.zeros(tuple(shape), wide)
            self.to_float = self.dst_dtype == np.float32
            if self.to_float:
                # the mean as sums * gain + bias, in one cv2 pass
                self.gain = float(src_spec.scale or 1.0) / self.length
                self.bias = -float(src_spec.zero_point or 0) * float(src_spec.scale or 1.0)
                self._flat_sums = self.sums.reshape(1, -1)
                self._dst, self._flat_dst = None, None
            else:
                self._index = np.zeros(tuple(shape), np.intp)  # np.take would cast otherwise
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
        if evicting and self.integer:
            np.subtract(self.sums, target, out=self.sums)
        np.copyto(target, output, casting="unsafe")
        if self.integer:
            np.add(self.sums, target, out=self.sums)

    def window_into(self, dst, oldest):
        if self.integer and self.to_float:
            if dst is not self._dst:  # the session's held head input: flattened once
                self._dst, self._flat_dst = dst, dst.reshape(1, -1)
            cv2.addWeighted(self._flat_sums, self.gain, self._flat_sums, 0.0, self.bias,
                            self._flat_dst, cv2.CV_32F)
            return dst
        if self.integer:
            np.add(self.sums, self.offset * self.length, out=self._index, casting="unsafe")
            np.take(self.table, self._index, out=dst, mode="clip")
            return dst
        # float models: summed afresh per window (an fp32 running sum would drift)
        np.add.reduce(self.slots, axis=0, out=self.mean)
        np.multiply(self.mean, 1.0 / self.length, out=self.mean)
        self.convert(self.mean, dst)
        return dst


def mean_table(length, offset, src_spec, dst_spec):
    """dst code (or float) of the window mean for every sum of ``length`` codes, each counted
    as ``code + offset`` (so the index of a sum is never negative)."""
    sums = np.arange(255 * length + 1, dtype=np.float64)
    real = (sums / length - offset - float(src_spec.zero_point or 0)) * float(src_spec.scale or 1.0)
    dst_dtype = np.dtype(dst_spec.dtype)
    if dst_dtype.kind == "f":
        return real.astype(dst_dtype)
    scaled = real / float(dst_spec.scale) + float(dst_spec.zero_point or 0)
    rounded = np.sign(scaled) * np.floor(np.abs(scaled) + 0.5)  # half away from zero, as TFLite
    info = np.iinfo(dst_dtype)
    return np.clip(rounded, info.min, info.max).astype(dst_dtype)


WINDOWS = {cls.reduce: cls for cls in (StackWindow, MeanWindow, RecurrentWindow)}


def make_window(reduce, length, shape, src_spec, dst_spec, step=None):
    """The window object for a manifest ``reduce`` ("stack", "mean" or "recurrent"; ``step``:
    the session's :class:`edge.recurrence.StepModel`, which only a recurrent window uses)."""
    try:
        cls = WINDOWS[reduce]
    except KeyError:
        raise EdgekitError("unknown window reduction %r; use one of %s"
                           % (reduce, ", ".join(sorted(WINDOWS))))
    return cls(length, shape, src_spec, dst_spec, step)
