"""The LSTM recurrence on the device: every window's state advanced by one step per frame.

Why here and not in the head: unrolled over a window, the recurrence is T-1 matmuls by the same
recurrent kernel W_h, and XNNPACK packs a copy of W_h for every one of them. On the
EfficientNet-B3 swim head that made a window read 6.26 MB of packed weights for 2.85 MB of
distinct ones, and the frame model evicts them all before the next window. But at stride 1
every frame belongs to T windows at once (the one it starts and the T-1 running), and all of
them take the same input projections ``W_x x_t + b``, which the frame model computes. So the
step model (``step.tflite``, :func:`quantize.streaming.step_model`) advances the states of all T
windows together, as one [T x u] x [u x 4u] FULLY_CONNECTED: one packed copy of W_h, read once
per frame. It is the same work, done as one batched matmul. The head then starts from a
finished window's T hidden states (measured: ``benchmarks/bench_streaming.py`` and the README's
streaming-split table).

Row k of the state belongs to the window that starts at the frame written into ring slot k: its
state is reset to zero (the LSTM's initial state, as in training) right before that frame's step.
After T pushes its window is the ring's window, and its T hidden states are read out, oldest step
first. Rows are independent in every op of the step model (a row's state never mixes with
another row's), so each window gets exactly what a recurrence from zero over its own T frames
would give, through the same int8 model (tests/test_streaming_split.py for the float split,
tests/test_edge_runner.py for the runner against the int8 models window by window).

The step model's tensors are named by this contract (``edgekit quantize`` writes them so):
inputs ``lstm_inputs`` [1, 4u] (the frame output), ``hidden`` and ``cell`` [1, T, u]; outputs
``next_hidden`` and ``next_cell`` [1, T, u]. Its int8 outputs are quantized differently from its
inputs, so states are carried over through 256-entry tables (:class:`edge.ringbuffer.Requantizer`).
"""

import time

import numpy as np

from edge.errors import EdgekitError
from edge.ringbuffer import Requantizer

STEP_INPUT = "lstm_inputs"
HIDDEN = "hidden"
CELL = "cell"
NEXT_HIDDEN = "next_hidden"
NEXT_CELL = "next_cell"


class StepModel(object):
    """The session's step interpreter and what every stream's :class:`RecurrentWindow` needs of
    it: tensor accessors and the conversions between its outputs, its inputs and the head's.

    ``step_file``: the manifest's ModelFile of ``step.tflite``; ``indices``: its signature
    indices; ``src``: the frame output it reads (``lstm_inputs``); ``dst``: the head input it
    fills (``hidden_states``, [1, T, u]); ``length``: T. Callers hold the session's lock.
    """

    def __init__(self, interpreter, step_file, indices, src, dst, length):
        self.interpreter = interpreter
        self.length = int(length)
        specs, tensors = {}, {}
        for kind, names, spec_of in (("inputs", (STEP_INPUT, HIDDEN, CELL), step_file.input),
                                     ("outputs", (NEXT_HIDDEN, NEXT_CELL), step_file.output)):
            for name in names:
                specs[name] = spec_of(name)
                if name not in indices[kind]:
                    raise EdgekitError("step model %s has no %s %r in its signature; re-run "
                                       "edgekit quantize" % (step_file.file, kind[:-1], name))
                tensors[name] = interpreter.tensor(indices[kind][name])
        for name in specs:
            want = list(src.shape) if name == STEP_INPUT else list(dst.shape)
            if list(specs[name].shape) != want:
                raise EdgekitError("manifest does not match model: step model %s %s is %s, "
                                   "expected %s (frame output %s, head input %s, T=%d); re-run "
                                   "edgekit quantize" % (step_file.file, name, specs[name].shape,
                                                         want, src.name, dst.name, length))
        self.units = int(dst.shape[-1])
        self.hidden_spec, self.cell_spec = specs[HIDDEN], specs[CELL]
        # the interpreter's tensors, held (edge.backends.base), without the batch axis
        self._x, self._hidden, self._cell = (tensors[name]()[0]
                                             for name in (STEP_INPUT, HIDDEN, CELL))
        self._next_hidden = tensors[NEXT_HIDDEN]()[0]
        self.to_input = Requantizer(src, specs[STEP_INPUT])
        self._feed, self._feed_source = None, None  # to_input bound to the frame output
        self.carry_hidden = Requantizer(specs[NEXT_HIDDEN], specs[HIDDEN]).bind(
            self._next_hidden, self._hidden)
        self.carry_cell = Requantizer(specs[NEXT_CELL], specs[CELL]).bind(
            tensors[NEXT_CELL]()[0], self._cell)
        self.to_head = Requantizer(specs[NEXT_HIDDEN], dst)
        self.zero_hidden = zero_code(specs[HIDDEN])
        self.zero_cell = zero_code(specs[CELL])
        self.owner = None  # the window whose state is in the input tensors now
        self.last_s = 0.0

    def new_state(self):
        """(hidden, cell) of T rows at the LSTM's zero state, in the step inputs' encoding."""
        shape = (self.length, self.units)
        return (np.full(shape, self.zero_hidden, np.dtype(self.hidden_spec.dtype)),
                np.full(shape, self.zero_cell, np.dtype(self.cell_spec.dtype)))

    def to_head_rows(self, slots):
        """For each ring slot s, the conversion of the step's ``next_hidden`` into
        ``slots[s]`` (a window's (T, T, u) head-encoded states), bound once per window."""
        return [self.to_head.bind(self._next_hidden, row) for row in slots]

    def advance(self, window, projections, start_row):
        """One step of all rows of ``window`` (a :class:`RecurrentWindow`) on this frame's
        ``projections``; row ``start_row`` starts from zero, and ``window.slots[start_row]``
        receives every row's new hidden state in the head input's encoding.

        The state stays in the step model's input tensors between the steps of one stream (the
        outputs are carried straight back into them); only when another stream's window steps
        is the state saved into its window (``hidden``/``cell``) and the other's loaded. One
        stream, the common case, never copies its state out (two [T, u] copies in and out per
        frame saved; not measured apart: README, "The step model"). Every conversion is bound
        to the held tensors beforehand (:meth:`edge.ringbuffer.Requantizer.bind`), so a step is
        two row writes, four vectorised passes and the invoke.
        """
        if self.owner is not window:
            if self.owner is not None:
                np.copyto(self.owner.hidden, self._hidden)
                np.copyto(self.owner.cell, self._cell)
            np.copyto(self._hidden, window.hidden)
            np.copyto(self._cell, window.cell)
            self.owner = window
        self._hidden[start_row] = self.zero_hidden
        self._cell[start_row] = self.zero_cell
        if projections is not self._feed_source:  # the frame output, held: bound once
            self._feed = self.to_input.bind(projections, self._x)
            self._feed_source = projections
        self._feed()
        t0 = time.perf_counter()
        self.interpreter.invoke()
        self.last_s = time.perf_counter() - t0
        self.carry_hidden()
        self.carry_cell()
        window.to_head[start_row]()


def zero_code(spec):
    """The stored value of 0.0 in ``spec``'s encoding (its zero point, or 0 for float)."""
    return int(spec.zero_point or 0) if spec.scale else 0


class RecurrentWindow(object):
    """The hidden states of the window the ring holds, computed a step per frame (head input
    [1, T, u]; see the module docstring). One per stream and head input; ``step`` is the
    session's :class:`StepModel`."""

    reduce = "recurrent"

    def __init__(self, length, shape, src_spec, dst_spec, step=None):
        if step is None:
            raise EdgekitError("a recurrent window needs the step model (step.tflite), and the "
                               "manifest lists none; re-run edgekit quantize")
        self.step = step
        T, u = int(length), step.units
        # this stream's state while another stream's is in the step model (StepModel.advance)
        self.hidden, self.cell = step.new_state()
        # slots[s, k]: row k's hidden state after the push into ring slot s
        self.slots = np.zeros((T, T, u), np.dtype(dst_spec.dtype))
        self.to_head = step.to_head_rows(self.slots)
        self._rows = self.slots.reshape(T * T, u)
        steps = np.arange(T)
        # the window whose oldest frame is in slot k: its step j was pushed into slot k + j
        self._window_rows = np.stack([((k + steps) % T) * T + k for k in range(T)]).astype(np.intp)

    def reset(self):
        """Nothing to forget: a row's state is zeroed when its window's first frame arrives,
        and a window is read only once all its T frames were pushed since that."""

    def store(self, slot, output, evicting):
        self.step.advance(self, output, slot)

    def window_into(self, dst, oldest):
        """The finished window's T hidden states, oldest step first, into ``dst`` (T, u)."""
        np.take(self._rows, self._window_rows[oldest], axis=0, out=dst)
        return dst
