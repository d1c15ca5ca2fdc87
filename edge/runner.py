"""The streaming runner: frames in, one ``WindowResult`` per region per window out.

Why streaming: the clip model runs the backbone on all T frames for every decision; here every
frame goes through the frame model exactly once per region, its feature map waits in a ring
buffer, and only the small clip head runs per decision (every ``stride`` frames once the ring is
warm). At T=15 and stride 1 that is ~1/15 of the backbone work per decision, with the same
numbers as the clip model (the head reads exactly the features the clip model computes inside).

Everything the hot path touches is prepared in the constructor: interpreters, tensor indices
resolved from the manifest's signature names, per-region preprocessors and rings, requantization
tables and output buffers. Per frame there is no allocation beyond the small view objects the
interpreter API hands out (``interpreter.tensor(i)()``); those views are dropped before the next
``invoke()``, which the interpreter insists on.

Windows are independent, as in the clip model (trained and evaluated per clip, always from a
zero LSTM state). ``edgekit quantize`` unrolls the LSTM, so its head holds no state between
``invoke()`` calls; a head converted with the fused UNIDIRECTIONAL_SEQUENCE_LSTM keeps hidden and
cell state in *variable* tensors, which would leak from one window (and region) into the next,
so the runner resets them before every window anyway (~1 us; nothing to do for unrolled heads).

Targets: the frame model runs on ``device`` (with ``frame_edgetpu`` on a Coral); the head stays
on the CPU, because its LSTM and attention do not map to the Edge TPU and it is small.
"""

import os
import time

import numpy as np

from edge.errors import EdgekitError
from edge.gallery import Gallery
from edge.interpreter import make_interpreter, parse_device
from edge.manifest import Manifest
from edge.preprocess import Preprocessor
from edge.results import WindowResult, decode_task, dequantize_into
from edge.ringbuffer import FeatureRing, Requantizer
from edge.tflite_inspect import signature_indices, tensor_specs


class StreamingRunner(object):
    """Run a model directory (manifest + frame/head models) over a stream of frames.

    ``rois``: list of (x, y, w, h) boxes (e.g. pool lanes), each with its own ring; None or []
    means the whole frame. ``gallery``: a :class:`Gallery` or a path to one, for open-set re-ID
    on the embedding task; ``unknown_threshold`` overrides the gallery's threshold.
    ``gap_policy``/``max_skip``/``max_gap_s``: see :mod:`edge.ringbuffer`. ``source_order``: the
    channel order of the frames passed in (OpenCV capture gives BGR). ``resize``: "fast" or
    "area", see :mod:`edge.preprocess`.
    """

    def __init__(self, model_dir, device="cpu", threads=None, stride=None, rois=None,
                 gallery=None, unknown_threshold=None, gap_policy="reset", max_skip=0,
                 max_gap_s=None, delegate=None, source_order="BGR", verify=True, resize="fast"):
        self.model_dir = os.fspath(model_dir)
        self.manifest = Manifest.load(self.model_dir)
        kind, _ = parse_device(device)
        frame_role = "frame_edgetpu" if kind == "edgetpu" else "frame"
        if verify:
            self.manifest.verify(self.model_dir, roles=[frame_role, "head"])
        self.stride = int(stride or self.manifest.default_stride)
        if self.stride < 1:
            raise EdgekitError("--stride must be >= 1 (got %s)" % stride)

        self.frame_interpreter = make_interpreter(
            self.manifest.model_path(self.model_dir, frame_role), device=device,
            delegate=delegate, threads=threads)
        self.head_interpreter = make_interpreter(
            self.manifest.model_path(self.model_dir, "head"), threads=threads)
        frame_spec = self._check_model(self.frame_interpreter, frame_role)
        head_spec = self._check_model(self.head_interpreter, "head")

        # Resolve tensor indices once, by signature name.
        frame_sig = signature_indices(self.frame_interpreter)
        head_sig = signature_indices(self.head_interpreter)
        self._frame_in = self.frame_interpreter.tensor(
            _only(frame_sig["inputs"], self.frame_interpreter.get_input_details(), "frame input"))
        self._frame_out = self.frame_interpreter.tensor(
            _only(frame_sig["outputs"], self.frame_interpreter.get_output_details(),
                  "frame output"))
        self._head_in = self.head_interpreter.tensor(
            _only(head_sig["inputs"], self.head_interpreter.get_input_details(), "head input"))
        frame_in_spec, frame_out_spec = frame_spec.inputs[0], frame_spec.outputs[0]
        head_in_spec = head_spec.inputs[0]
        self.clip_length = int(self.manifest.clip_length)
        feature_shape = tuple(self.manifest.feature_shape)
        expected_head = [1, self.clip_length] + list(feature_shape)
        if list(head_in_spec.shape) != expected_head or \
                list(frame_out_spec.shape)[1:] != list(feature_shape):
            raise EdgekitError("manifest does not match model: the head takes %s and the frame "
                               "model gives %s, but the manifest says T=%d and feature shape %s; "
                               "re-run edgekit quantize" % (head_in_spec.shape,
                                                            frame_out_spec.shape,
                                                            self.clip_length, feature_shape))
        self._requant = Requantizer(frame_out_spec, head_in_spec)

        # Task outputs: index, spec, and a float32 buffer each, resolved by name now.
        self._tasks = []
        for task in self.manifest.tasks:
            spec = head_spec.output(task.output)
            index = head_sig["outputs"].get(task.output)
            if index is None:
                index = _by_name(self.head_interpreter.get_output_details(), task.output)
            width = int(np.prod(spec.shape[1:])) if len(spec.shape) > 1 else 1
            if task.kind == "classification" and width != len(task.labels):
                raise EdgekitError("manifest task %s has %d labels but head output %s has %d "
                                   "values; re-run edgekit quantize"
                                   % (task.name, len(task.labels), task.output, width))
            self._tasks.append((task, index, spec, width))

        # Regions, each with its preprocessor and ring.
        self.rois = [tuple(r) for r in (rois or [])] or [None]
        self.resize = resize
        self._preprocessors = [Preprocessor(self.manifest.input, frame_in_spec, source_order, r,
                                            resize=resize)
                               for r in self.rois]
        self.rings = [FeatureRing(self.clip_length, feature_shape, np.dtype(head_in_spec.dtype),
                                  gap_policy=gap_policy, max_skip=max_skip, max_gap_s=max_gap_s)
                      for _ in self.rois]
        self._gap_at = [-1] * len(self.rois)  # first frame after the last gap kept by "hold"
        self._frame_in_spec = frame_in_spec

        if isinstance(gallery, (str, os.PathLike)):
            gallery = Gallery.load(gallery)
        self.gallery = gallery
        self.unknown_threshold = unknown_threshold
        if gallery is not None and self.embedding_task is None:
            raise EdgekitError("a gallery was given but model %s has no embedding task"
                               % self.manifest.name)

        self._next_index = 0
        self.frames = 0
        self.windows = 0
        # Accumulated seconds, for benchmarks: raw invoke() time vs everything the runner adds.
        self.time_invoke = 0.0
        self.time_total = 0.0

    # -- setup helpers ---------------------------------------------------------------------------

    def _check_model(self, interpreter, role):
        """The manifest's ModelFile for ``role`` after checking it against the loaded model."""
        expected = self.manifest.models[role]
        inputs, outputs = tensor_specs(interpreter)
        for kind, got, want in (("inputs", inputs, expected.inputs),
                                ("outputs", outputs, expected.outputs)):
            got_key = sorted(_key(s) for s in got)
            want_key = sorted(_key(s) for s in want)
            if got_key != want_key:
                raise EdgekitError("manifest does not match model %s: its %s are %s but "
                                   "manifest.json says %s; re-run edgekit quantize"
                                   % (expected.file, kind, got_key, want_key))
        return expected

    @property
    def embedding_task(self):
        for task, _, _, _ in self._tasks:
            if task.kind == "embedding":
                return task.name
        return None

    # -- the hot path ----------------------------------------------------------------------------

    def process(self, frame, frame_index=None, timestamp=None):
        """Feed one frame (uint8 H x W x 3, ``source_order``); return the windows it completes.

        ``frame_index`` defaults to one more than the previous frame's; a jump (skipped frames)
        or a timestamp jump beyond ``max_gap_s`` triggers the gap policy.
        """
        start = time.perf_counter()
        if frame_index is None:
            frame_index = self._next_index
        self._next_index = frame_index + 1
        self.frames += 1
        results = []
        invoke = 0.0
        for r in range(len(self.rois)):
            t0 = time.perf_counter()
            view = self._frame_in()
            self._preprocessors[r](frame, view[0])
            del view
            t1 = time.perf_counter()
            self.frame_interpreter.invoke()
            t2 = time.perf_counter()
            invoke += t2 - t1
            ring = self.rings[r]
            view = self._frame_out()
            gap = ring.push(view[0], frame_index, timestamp, self._requant)
            del view
            if gap and ring.gap_policy == "hold":
                self._gap_at[r] = frame_index
            if ring.due(self.stride):
                results.append(self._run_head(r, (t1 - t0) * 1e3, (t2 - t1) * 1e3))
                invoke += self._last_head_s
        self.time_invoke += invoke
        self.time_total += time.perf_counter() - start
        return results

    def _run_head(self, r, pre_ms, frame_ms):
        ring = self.rings[r]
        view = self._head_in()
        ring.ordered_into(view[0])
        del view
        t0 = time.perf_counter()
        self.head_interpreter.reset_all_variables()  # fused-LSTM heads: zero their state
        self.head_interpreter.invoke()
        self._last_head_s = time.perf_counter() - t0
        tasks = {}
        embedding = None
        for task, index, spec, width in self._tasks:
            values = np.empty(width, np.float32)  # per window: the caller keeps it
            raw = self.head_interpreter.get_tensor(index)
            dequantize_into(raw.reshape(-1), spec, values)
            tasks[task.name] = decode_task(task, values)
            if task.kind == "embedding":
                embedding = values
        match = None
        if self.gallery is not None and embedding is not None:
            match = self.gallery.match(embedding, self.unknown_threshold)
        (first, last), (t_first, t_last) = ring.frame_range()
        self.windows += 1
        return WindowResult(r, self.rois[r], first, last, t_first, t_last, tasks, match,
                            {"preprocess": pre_ms, "frame_model": frame_ms,
                             "head": self._last_head_s * 1e3},
                            gap=first < self._gap_at[r])

    # -- whole clips (enrollment, tests) ---------------------------------------------------------

    def run_clip(self, frames, source_order="RGB"):
        """Run T frames (uint8, whole frame, no ROI) through frame model + head; one result.

        Used by ``edgekit enroll`` on clips from :func:`edge.video.read_clip` (RGB). Uses its own
        ring, so the streams being processed are not disturbed.
        """
        frames = np.asarray(frames)
        if frames.ndim != 4 or len(frames) < self.clip_length:
            raise EdgekitError("a clip needs %d frames (T, H, W, 3), got shape %s"
                               % (self.clip_length, frames.shape))
        pre = Preprocessor(self.manifest.input, self._frame_in_spec, source_order, None,
                           resize=self.resize)
        saved = (self.rois, self._preprocessors, self.rings, self._gap_at, self.frames,
                 self.windows, self._next_index)
        ring = self.rings[0]
        self.rois = [None]
        self._preprocessors = [pre]
        self.rings = [FeatureRing(self.clip_length, ring.features.shape[1:], ring.features.dtype)]
        self._gap_at = [-1]
        try:
            result = None
            for i, frame in enumerate(frames[-self.clip_length:]):
                out = self.process(np.ascontiguousarray(frame), frame_index=i)
                if out:
                    result = out[-1]
            return result
        finally:
            (self.rois, self._preprocessors, self.rings, self._gap_at, self.frames,
             self.windows, self._next_index) = saved

    def reset(self):
        """Empty every region's ring (e.g. after the source reconnects)."""
        for ring in self.rings:
            ring.reset()


def _key(spec):
    scale = None if spec.scale is None else round(float(spec.scale), 9)
    return (spec.name, tuple(spec.shape), spec.dtype, scale, spec.zero_point)


def _only(named, details, what):
    if len(named) == 1:
        return next(iter(named.values()))
    if len(details) == 1:
        return details[0]["index"]
    raise EdgekitError("the %s is ambiguous: the model has %d of them; the frame model must have "
                       "one input and one output, the head one input" % (what, len(details)))


def _by_name(details, name):
    for detail in details:
        if detail["name"] == name:
            return detail["index"]
    raise EdgekitError("head model has no output %r; re-run edgekit quantize" % name)
