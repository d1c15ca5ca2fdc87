"""A model session: one model directory loaded once per process, shared by every stream.

Why apart from the streams: a camera daemon with N cameras (or N regions) needs N rings but only
one copy of the models; on a Coral, several interpreters would compete for one Edge TPU. So the
session owns what is per model — the backend, the frame and head interpreters, their tensor
indices resolved by signature name, the manifest's ``window`` (which frame output makes which
head input, stacked or averaged: :mod:`edge.window_inputs`), the task decoding — and a stream
(:class:`edge.runner.StreamingRunner`) owns only its rings, regions and counters. :meth:`ModelSession.shared` hands every caller in a process the same session for the
same (directory, backend, threads).

Interpreters are not thread-safe and their input/output tensors are single buffers, so every use
of them goes through :attr:`ModelSession.lock`: a stream holds it while it fills the frame input,
invokes and copies the outputs into its ring (one frame of all its regions at a time), and while
it runs the head. Windows never see another stream's data: the head inputs are written from the
stream's own ring under the same lock hold.

Windows are independent, as in the clip model (trained and evaluated per clip, always from a
zero LSTM state). ``edgekit quantize`` unrolls the LSTM, so its head holds no state between
``invoke()`` calls; a head converted with the fused UNIDIRECTIONAL_SEQUENCE_LSTM keeps hidden and
cell state in *variable* tensors, which would leak from one window (and stream) into the next,
so the head's variables are reset before every window. Only such heads: the manifest lists each
model's ops, and a head with no stateful op (:data:`STATEFUL_OPS`; every head ``edgekit quantize``
writes) skips the call, a walk over every tensor of the graph, cold in cache after the invoke.
With that and float task outputs copied straight from the output tensors, the stage "head:
reset, decode tasks" of ``benchmarks/bench_streaming.py --model DIR --stages 600`` went from
81-83 us to 72-75 us (B3 swim, two runs of each tree interleaved, Intel Xeon, 2 MiB L2; the
whole-frame overhead moved within the host's noise). A manifest without ``ops`` (written by an
old runtime) keeps the reset.

Every tensor the hot path reads or writes (the frame's pixels and outputs, the step's, the head's
inputs and outputs) is taken as an array once, here, and held for the session's life
(:mod:`edge.backends.base` promises that they stay valid across invokes), so that per frame the
conversions between them are calls bound beforehand (:meth:`edge.ringbuffer.Requantizer.bind`)
rather than views made, reshaped and dropped around every invoke. README, "The runner's
overhead on a faster CPU", has what that saved.

Where the manifest's window is "recurrent" (schema 4), a third interpreter, the step model,
advances the LSTM state of every window once per frame inside the ring's push
(:mod:`edge.recurrence`); each stream keeps its own states, so the step's tensors are filled from
them under the same lock hold.

The frame model runs on the session's backend (in the backend's manifest variant: the compiled
Edge TPU model on a Coral); the step model and the head always run on LiteRT's CPU kernels, because its LSTM and
attention do not map to accelerators such as the Edge TPU, and it is small (XNNPACK, except on
runtimes whose XNNPACK computes it wrongly: :func:`edge.backends.litert.head_kernels`).
"""

import os
import threading
import time
import weakref

import numpy as np

from edge import backends
from edge.backends.litert import head_kernels
from edge.errors import EdgekitError
from edge.manifest import MANIFEST_NAME, Manifest
from edge.preprocess import Preprocessor
from edge.recurrence import StepModel
from edge.results import WindowResult, decode_task, dequantize_into
from edge.ringbuffer import FeatureRing
from edge.window_inputs import make_window
from edge.tflite_inspect import signature_indices, tensor_specs

# ops that keep state in variable tensors between invoke() calls
STATEFUL_OPS = frozenset(("UNIDIRECTIONAL_SEQUENCE_LSTM", "BIDIRECTIONAL_SEQUENCE_LSTM", "LSTM",
                          "UNIDIRECTIONAL_SEQUENCE_RNN", "BIDIRECTIONAL_SEQUENCE_RNN", "RNN",
                          "SVDF", "VAR_HANDLE", "ASSIGN_VARIABLE", "READ_VARIABLE"))

_SHARED = weakref.WeakValueDictionary()
_SHARED_LOCK = threading.Lock()


class ModelSession(object):
    """Frame + head models of one model directory on one backend.

    ``device``: a ``--device`` string or backend key (``cpu``, ``edgetpu:usb``, ...), or a
    :class:`~edge.backends.base.Backend` instance; ``delegate``: a delegate library path (see
    :func:`edge.backends.create`); ``threads``: CPU threads of both interpreters; ``verify``:
    check the model files against the manifest's sha256 first.
    """

    def __init__(self, model_dir, device="cpu", threads=None, delegate=None, verify=True):
        self.model_dir = os.fspath(model_dir)
        self.manifest = Manifest.load(self.model_dir)
        self.backend = device if isinstance(device, backends.Backend) else backends.create(
            device, delegate=delegate)
        self.threads = threads
        variant = self.backend.variant
        cpu_roles = self.manifest.runtime_roles()[1:]  # step (schema 4) and head
        if verify:
            self.manifest.verify(self.model_dir, roles=["frame"], variant=variant)
            self.manifest.verify(self.model_dir, roles=cpu_roles)
        self.lock = threading.RLock()
        frame_file = self.manifest.model_file("frame", variant)
        head_file = self.manifest.model_file("head")
        self.frame_interpreter = self.backend.load(
            os.path.join(self.model_dir, frame_file.file), threads=threads)
        cpu = backends.create("cpu", kernels=head_kernels())
        self.head_interpreter = cpu.load(os.path.join(self.model_dir, head_file.file),
                                         threads=threads)
        _check_model(self.frame_interpreter, frame_file)
        _check_model(self.head_interpreter, head_file)
        self.step_file, self.step_interpreter = None, None
        if "step" in cpu_roles:
            self.step_file = self.manifest.model_file("step")
            self.step_interpreter = cpu.load(os.path.join(self.model_dir, self.step_file.file),
                                             threads=threads)
            _check_model(self.step_interpreter, self.step_file)

        frame_sig = signature_indices(self.frame_interpreter)
        head_sig = signature_indices(self.head_interpreter)
        self.frame_input = self.frame_interpreter.tensor(_only(
            frame_sig["inputs"], self.frame_interpreter.get_input_details(), "frame input"))
        self.frame_in_spec = frame_file.inputs[0]
        self.clip_length = int(self.manifest.clip_length)
        self.feature_shape = tuple(self.manifest.feature_shape)
        self.window = self._resolve_window(frame_file, head_file, frame_sig, head_sig)
        # the hot path's tensors, held for the session's life (edge.backends.base), without
        # the batch axis: the frame's pixels; per window input, aligned, the frame output it
        # reads and the head input it fills
        self.frame_pixels = self.frame_input()[0]
        self._frame_outputs = [self.frame_interpreter.tensor(w[0])()[0] for w in self.window]
        self._head_inputs = [self.head_interpreter.tensor(w[1])()[0] for w in self.window]
        self.tasks = self._resolve_tasks(head_file, head_sig)
        self.head_has_state = not head_file.ops or bool(STATEFUL_OPS & set(head_file.ops))
        self.last_head_s = 0.0
        self.last_step_s = 0.0

    def _resolve_window(self, frame_file, head_file, frame_sig, head_sig):
        """[(frame output index, head input index, WindowInput, src spec, dst spec)] of the
        manifest's ``window``, each checked against both models' shapes."""
        T = self.clip_length
        resolved, fed = [], set()
        self.step = None
        for link in self.manifest.window:
            src = frame_file.output(link.source)
            dst = head_file.input(link.input)
            if link.reduce == "recurrent":
                self.step = self._step_model(src, dst)
                want = [1, T, self.step.units]
            elif link.reduce == "stack":
                want = [1, T] + list(src.shape[1:])
            else:
                want = list(src.shape)
            if list(dst.shape) != want:
                raise EdgekitError("manifest does not match model: head input %s is %s, but a "
                                   "%s of frame output %s over T=%d frames is %s; re-run edgekit "
                                   "quantize" % (link.input, dst.shape, link.reduce, link.source,
                                                 T, want))
            index_out = _index(frame_sig["outputs"], self.frame_interpreter.get_output_details(),
                               link.source, "frame output")
            index_in = _index(head_sig["inputs"], self.head_interpreter.get_input_details(),
                              link.input, "head input")
            resolved.append((index_out, index_in, link, src, dst))
            fed.add(link.input)
        missing = [spec.name for spec in head_file.inputs if spec.name not in fed]
        if missing:
            raise EdgekitError("manifest does not match model: the window feeds no head input "
                               "%s; re-run edgekit quantize" % ", ".join(missing))
        return resolved

    def _step_model(self, src, dst):
        """The :class:`~edge.recurrence.StepModel` a "recurrent" window link needs."""
        if self.step is not None:
            raise EdgekitError("manifest window has two recurrent inputs; one step model "
                               "serves one; re-run edgekit quantize")
        if self.step_interpreter is None:
            raise EdgekitError("manifest window makes head input %s recurrently but lists no "
                               "step model (models.step); re-run edgekit quantize" % dst.name)
        if len(dst.shape) != 3:
            raise EdgekitError("manifest does not match model: head input %s is %s, a "
                               "recurrent window is [1, T, units]; re-run edgekit quantize"
                               % (dst.name, dst.shape))
        return StepModel(self.step_interpreter, self.step_file,
                         signature_indices(self.step_interpreter), src, dst, self.clip_length)

    @classmethod
    def shared(cls, model_dir, device="cpu", threads=None, delegate=None, verify=True):
        """The process's session for (directory, backend, threads), made on first use.

        A rewritten manifest (a new ``edgekit quantize`` into the same directory) gets a new
        session; a session nobody holds any more is freed with its interpreters.
        """
        backend = device if isinstance(device, backends.Backend) else backends.create(
            device, delegate=delegate)
        path = os.path.realpath(os.fspath(model_dir))
        try:
            stamp = os.stat(os.path.join(path, MANIFEST_NAME))
            stamp = (stamp.st_mtime_ns, stamp.st_size)
        except OSError:
            stamp = None  # the constructor reports the missing manifest
        key = (path, stamp, backend.identity(), threads)
        with _SHARED_LOCK:
            session = _SHARED.get(key)
            if session is None:
                session = cls(path, backend, threads=threads, verify=verify)
                _SHARED[key] = session
            return session

    def _resolve_tasks(self, head_file, head_sig):
        """[(TaskSpec, output tensor index, the output's held array (flat), output
        TensorSpec, width)] in manifest order."""
        tasks = []
        for task in self.manifest.tasks:
            spec = head_file.output(task.output)
            index = head_sig["outputs"].get(task.output)
            if index is None:
                index = _by_name(self.head_interpreter.get_output_details(), task.output)
            width = int(np.prod(spec.shape[1:])) if len(spec.shape) > 1 else 1
            if task.kind == "classification" and width != len(task.labels):
                raise EdgekitError("manifest task %s has %d labels but head output %s has %d "
                                   "values; re-run edgekit quantize"
                                   % (task.name, len(task.labels), task.output, width))
            held = self.head_interpreter.tensor(index)().reshape(-1)
            tasks.append((task, index, held, spec, width))
        return tasks

    @property
    def embedding_task(self):
        for task, _, _, _, _ in self.tasks:
            if task.kind == "embedding":
                return task.name
        return None

    def new_ring(self, **gap_options):
        """An empty ring with one window input per head input (:mod:`edge.window_inputs`)."""
        windows = [make_window(link.reduce, self.clip_length, src.shape[1:], src, dst,
                               self.step) for _, _, link, src, dst in self.window]
        return FeatureRing(self.clip_length, windows, **gap_options)

    def new_preprocessor(self, source_order="BGR", roi=None, resize="fast"):
        return Preprocessor(self.manifest.input, self.frame_in_spec, source_order, roi,
                            resize=resize)

    # -- the hot path (callers hold self.lock) ---------------------------------------------------

    def push_outputs(self, ring, frame_index, timestamp=None):
        """Store the frame model's outputs (just invoked) in ``ring``; True on a gap. Caller
        holds :attr:`lock`."""
        gap = ring.push(self._frame_outputs, frame_index, timestamp)  # a recurrent window
        self.last_step_s = self.step.last_s if self.step is not None else 0.0  # steps in it
        return gap

    def run_head(self, ring):
        """Head over ``ring``'s window -> {task name: TaskOutput}. Caller holds :attr:`lock`."""
        for i, head_input in enumerate(self._head_inputs):
            ring.window_into(i, head_input)
        head = self.head_interpreter
        t0 = time.perf_counter()
        if self.head_has_state:
            head.reset_all_variables()  # fused-LSTM heads: zero their state
        head.invoke()
        self.last_head_s = time.perf_counter() - t0
        tasks = {}
        for task, _, output, spec, width in self.tasks:
            if spec.scale or output.dtype != np.float32:
                values = dequantize_into(output, spec, np.empty(width, np.float32))
            else:
                values = output.copy()  # the caller keeps it past the next window
            tasks[task.name] = decode_task(task, values)
        return tasks

    # -- whole clips (enrollment, scoring) -------------------------------------------------------

    def run_clip(self, frames, source_order="RGB", resize="fast"):
        """T frames (uint8, whole frame) through frame model + head -> one WindowResult.

        A pure call: its own preprocessor and ring, nothing of any stream touched. Used by
        ``edgekit enroll``, ``edgekit bench``'s accuracy and report.json's TFLite scores.
        """
        frames = np.asarray(frames)
        if frames.ndim != 4 or len(frames) < self.clip_length:
            raise EdgekitError("a clip needs %d frames (T, H, W, 3), got shape %s"
                               % (self.clip_length, frames.shape))
        pre = self.new_preprocessor(source_order, None, resize)
        ring = self.new_ring()
        clip = frames[-self.clip_length:]
        with self.lock:
            for i, frame in enumerate(clip):
                pre(np.ascontiguousarray(frame), self.frame_pixels)
                self.frame_interpreter.invoke()
                self.push_outputs(ring, i)
            tasks = self.run_head(ring)
        return WindowResult(0, None, 0, len(clip) - 1, -1.0, -1.0, tasks)


def _check_model(interpreter, expected):
    """Check the loaded model's inputs/outputs are the ones the manifest's ModelFile names."""
    inputs, outputs = tensor_specs(interpreter)
    for kind, got, want in (("inputs", inputs, expected.inputs),
                            ("outputs", outputs, expected.outputs)):
        got_key = sorted(_key(s) for s in got)
        want_key = sorted(_key(s) for s in want)
        if got_key != want_key:
            raise EdgekitError("manifest does not match model %s: its %s are %s but "
                               "manifest.json says %s; re-run edgekit quantize"
                               % (expected.file, kind, got_key, want_key))


def _key(spec):
    scale = None if spec.scale is None else round(float(spec.scale), 9)
    return (spec.name, tuple(spec.shape), spec.dtype, scale, spec.zero_point)


def _only(named, details, what):
    if len(named) == 1:
        return next(iter(named.values()))
    if len(details) == 1:
        return details[0]["index"]
    raise EdgekitError("the %s is ambiguous: the model has %d of them; the frame model must have "
                       "one input" % (what, len(details)))


def _index(named, details, name, what):
    """Tensor index of signature name ``name`` (or of the tensor called so, or of the only one)."""
    if name in named:
        return named[name]
    if len(details) == 1 and not any(d["name"] == name for d in details):
        return details[0]["index"]
    return _by_name(details, name, what)


def _by_name(details, name, what="head output"):
    for detail in details:
        if detail["name"] == name:
            return detail["index"]
    raise EdgekitError("the model has no %s %r; re-run edgekit quantize" % (what, name))
