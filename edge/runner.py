"""The streaming runner: frames in, one ``WindowResult`` per region per window out.

Why streaming: the clip model runs the backbone on all T frames for every decision; here every
frame goes through the frame model exactly once per region, what the head needs of it waits in
a ring buffer, and only the small window head runs per decision (every ``stride`` frames once the
ring is warm). At T=15 and stride 1 that is ~1/15 of the backbone work per decision, with the
same numbers as the clip model (:mod:`quantize.streaming` moves every per-frame piece of the
network, down to the LSTM's input projections, into the frame model).

A runner is one *stream*: its regions, their preprocessors and rings, gap state and counters. The
models belong to a :class:`~edge.session.ModelSession`, shared by every runner of the process on
the same model directory and backend (``session=`` passes one explicitly), so N cameras cost one
copy of the models. Everything the hot path touches is prepared in the constructor, down to the
interpreters' tensors, held as arrays for the session's life (:mod:`edge.backends.base`); per
frame nothing is allocated but each window's result: its task outputs and the record.
"""

import os
import time

from edge.errors import EdgekitError
from edge.gallery import Gallery
from edge.results import WindowResult
from edge.session import ModelSession


class StreamingRunner(object):
    """Run a model directory (manifest + frame/head models) over a stream of frames.

    ``rois``: list of (x, y, w, h) boxes (e.g. pool lanes), each with its own ring; None or []
    means the whole frame. ``gallery``: a :class:`Gallery` or a path to one, for open-set re-ID
    on the embedding task; ``unknown_threshold`` overrides the gallery's threshold.
    ``gap_policy``/``max_skip``/``max_gap_s``: see :mod:`edge.ringbuffer`. ``source_order``: the
    channel order of the frames passed in (OpenCV capture gives BGR). ``resize``: "fast" or
    "area", see :mod:`edge.preprocess`.
    """

    def __init__(self, model_dir=None, device="cpu", threads=None, stride=None, rois=None,
                 gallery=None, unknown_threshold=None, gap_policy="reset", max_skip=0,
                 max_gap_s=None, delegate=None, source_order="BGR", verify=True, resize="fast",
                 session=None):
        if session is None:
            if model_dir is None:
                raise EdgekitError("StreamingRunner needs a model directory or a session")
            session = ModelSession.shared(model_dir, device=device, threads=threads,
                                          delegate=delegate, verify=verify)
        self.session = session
        self.model_dir = session.model_dir
        self.manifest = session.manifest
        self.clip_length = session.clip_length
        self.stride = int(session.manifest.default_stride if stride is None else stride)
        if self.stride < 1:
            raise EdgekitError("--stride must be >= 1 (got %s)" % stride)

        self.rois = [tuple(r) for r in (rois or [])] or [None]
        self.resize = resize
        self._preprocessors = [session.new_preprocessor(source_order, r, resize)
                               for r in self.rois]
        self.rings = [session.new_ring(gap_policy=gap_policy, max_skip=max_skip,
                                       max_gap_s=max_gap_s) for _ in self.rois]
        self._gap_at = [-1] * len(self.rois)  # first frame after the last gap kept by "hold"

        if isinstance(gallery, (str, os.PathLike)):
            gallery = Gallery.load(gallery)
        self.gallery = gallery
        self.unknown_threshold = unknown_threshold
        if gallery is not None and session.embedding_task is None:
            raise EdgekitError("a gallery was given but model %s has no embedding task"
                               % self.manifest.name)

        self._next_index = 0
        self.frames = 0
        self.windows = 0
        # Accumulated seconds, for benchmarks: raw invoke() time vs everything the runner adds.
        self.time_invoke = 0.0
        self.time_total = 0.0

    @property
    def frame_interpreter(self):
        return self.session.frame_interpreter

    @property
    def head_interpreter(self):
        return self.session.head_interpreter

    @property
    def embedding_task(self):
        return self.session.embedding_task

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
        session = self.session
        pixels = session.frame_pixels
        invoke_frame = session.frame_interpreter.invoke
        push_outputs = session.push_outputs
        with session.lock:
            for r in range(len(self.rois)):
                t0 = time.perf_counter()
                self._preprocessors[r](frame, pixels)
                t1 = time.perf_counter()
                invoke_frame()
                t2 = time.perf_counter()
                invoke += t2 - t1
                ring = self.rings[r]
                gap = push_outputs(ring, frame_index, timestamp)
                invoke += session.last_step_s
                if gap and ring.gap_policy == "hold":
                    self._gap_at[r] = frame_index
                if ring.due(self.stride):
                    tasks = session.run_head(ring)
                    invoke += session.last_head_s
                    results.append(self._window(r, tasks, (t1 - t0) * 1e3, (t2 - t1) * 1e3,
                                                session.last_step_s * 1e3,
                                                session.last_head_s * 1e3))
        self.time_invoke += invoke
        self.time_total += time.perf_counter() - start
        return results

    def _window(self, r, tasks, pre_ms, frame_ms, step_ms, head_ms):
        ring = self.rings[r]
        match = None
        if self.gallery is not None:
            match = self.gallery.match(tasks[self.session.embedding_task].values,
                                       self.unknown_threshold)
        (first, last), (t_first, t_last) = ring.frame_range()
        self.windows += 1
        return WindowResult(r, self.rois[r], first, last, t_first, t_last, tasks, match,
                            {"preprocess": pre_ms, "frame_model": frame_ms, "step": step_ms,
                             "head": head_ms},
                            gap=first < self._gap_at[r])

    # -- whole clips (enrollment, tests) ---------------------------------------------------------

    def run_clip(self, frames, source_order="RGB"):
        """Run T frames (uint8, whole frame, no ROI) through frame model + head; one result.

        A pure call on the session (:meth:`ModelSession.run_clip`): this runner's streams are
        not disturbed. The gallery, if any, names the identity.
        """
        result = self.session.run_clip(frames, source_order, self.resize)
        if self.gallery is not None:
            result.match = self.gallery.match(
                result.tasks[self.session.embedding_task].values, self.unknown_threshold)
        return result

    def reset(self):
        """Empty every region's ring (e.g. after the source reconnects)."""
        for ring in self.rings:
            ring.reset()

