"""The inference worker: one thread per camera, the streaming runner over all its regions.

Why one runner per camera (with one ring per region inside it) rather than one per region: the
frame is decoded once and every region is cropped from it; the runner already keeps a separate
feature ring per region, so regions never mix.

The loop takes the oldest queued frame, runs it, turns the windows it completes into events and
hands them to the dispatcher. Per frame it only compares integers and updates counters; dicts
are built only for events, which are rare.

On shutdown the capture stops first; the worker then drains what is already queued (a few frames:
the queue is bounded) so the window in progress completes, and exits.
"""

import logging
import threading
import time

from edge.errors import EdgekitError
from edge.preprocess import check_roi
from edge.serve.capture import RECONNECT_GAP
from edge.serve.dispatch import Recent
from edge.serve.threadname import name_os_thread

log = logging.getLogger("edgekit.serve.worker")

TIMING_KEYS = ("preprocess", "frame_model", "step", "head")


class Worker(threading.Thread):
    def __init__(self, name, runner, region_names, region_events, queue, capture, dispatcher,
                 clock=time.monotonic):
        super().__init__(name="worker-%s" % name, daemon=True)
        self.camera_name = name
        self.runner = runner
        self.region_names = list(region_names)
        self.region_events = region_events  # one RegionEvents per runner ROI, same order
        self.queue = queue
        self.capture = capture
        self.dispatcher = dispatcher
        self._clock = clock
        self._stopping = threading.Event()
        self._checked_size = None
        self._last_index = None
        self._events = []  # reused per frame
        self.error = None
        self.frames_processed = 0
        self.frames_rejected = 0
        self.windows = 0
        self.events = 0
        self.resets = 0
        self.busy_s = 0.0
        self.timings_ms = dict.fromkeys(TIMING_KEYS, 0.0)  # moving average per model stage
        # ... and their running totals: a rate over any interval is (total2 - total1) / windows,
        # where the moving average only tells the last ten or so windows
        self.timings_total_ms = dict.fromkeys(TIMING_KEYS, 0.0)
        self.last_window_at = None
        # Where an event's latency goes (ms, wall clock from the frame's capture): waiting in
        # the frame queue, and until the event is handed to the sinks.
        self.latency = {"queue_wait": Recent(), "frame_to_emit": Recent()}

    def stop(self):
        """Finish what is queued, then exit (the capture must already be stopping)."""
        self._stopping.set()

    def run(self):
        name_os_thread()
        queue = self.queue
        while True:
            slot = queue.get(0.2)
            if slot is None:
                if self._stopping.is_set() or (queue.closed and not self.capture.is_alive()):
                    break
                continue
            try:
                self._process(slot)
            except Exception:  # noqa: BLE001 - log, keep the camera alive
                log.exception("camera %s: processing frame %d failed", self.camera_name,
                              slot.index)
        queue.release()

    def _process(self, slot):
        frame = slot.frame
        if frame.shape[:2] != self._checked_size:
            self._check_regions(frame.shape)
        if self.error is not None:
            self.frames_rejected += 1
            return
        last = self._last_index
        if last is not None and (slot.index - last >= RECONNECT_GAP or slot.index <= last):
            self.runner.reset()  # a new connection: never mix it with the old one's frames
            self.resets += 1
        self._last_index = slot.index
        self.latency["queue_wait"].add((time.time() - slot.wall_time) * 1e3)
        start = self._clock()
        results = self.runner.process(frame, slot.index, slot.timestamp)
        self.frames_processed += 1
        if results:
            events = self._events
            for result in results:
                self.windows += 1
                timings, totals = self.timings_ms, self.timings_total_ms
                for key in TIMING_KEYS:
                    value = result.timings.get(key)
                    if value is not None:
                        timings[key] += 0.1 * (value - timings[key])
                        totals[key] += value
                self.region_events[result.roi_index].on_window(result, slot.wall_time, events)
            self.last_window_at = self._clock()
            if events:
                self.events += len(events)
                self.latency["frame_to_emit"].add((time.time() - slot.wall_time) * 1e3)
                for event in events:
                    self.dispatcher.emit(event)
                del events[:]
        self.busy_s += self._clock() - start

    def _check_regions(self, shape):
        self._checked_size = shape[:2]
        self.error = None
        scale = getattr(self.capture, "decode_scale", 1)
        at = " (decoded at 1/%d: %d x %d)" % (scale, shape[1], shape[0]) if scale > 1 else ""
        model = self.runner.manifest.input if scale > 1 else None
        for name, roi in zip(self.region_names, self.runner.rois):
            where = "cameras.%s.regions.%s%s" % (self.camera_name, name, at)
            if roi is not None:
                try:
                    check_roi(roi, shape, where=where)
                except EdgekitError as exc:
                    self.error = str(exc)
                    log.error("camera %s: %s; this camera's frames are not processed until the "
                              "config is fixed", self.camera_name, exc)
                    return
            w, h = (roi[2], roi[3]) if roi is not None else (shape[1], shape[0])
            if model is not None and (w < model.width or h < model.height):
                log.warning("camera %s: %s is %d x %d pixels as decoded, smaller than the "
                            "model's %d x %d input, so it is enlarged: use a smaller "
                            "decode_scale", self.camera_name, where, w, h, model.width,
                            model.height)

    def snapshot(self):
        rings = self.runner.rings
        warm = [min(1.0, r.count / float(r.length)) for r in rings]
        return {
            "frames_processed": self.frames_processed,
            "frames_rejected": self.frames_rejected,
            "windows": self.windows,
            "events": self.events,
            "ring_resets": self.resets,
            "error": self.error,
            "inference_ms": {k: round(v, 3) for k, v in self.timings_ms.items()},
            "inference_total_ms": {k: round(v, 3) for k, v in self.timings_total_ms.items()},
            "warmup": {name: round(w, 3) for name, w in zip(self.region_names, warm)},
            "busy_s": round(self.busy_s, 3),
            "latency_ms": {k: v.summary() for k, v in self.latency.items()},
        }
