"""The daemon's lifecycle: build, start what can start, supervise, stop in order.

What is fatal and what is not: a config or model directory that is wrong makes every camera
wrong, so those stop the start with one clear message (exit 1). Everything that can come back by
itself is *not* fatal: a camera that cannot be opened (retried with backoff), an unreachable
broker (events are spooled), an HTTP port in use (events still flow). Those are listed in the
start-up log as what could not start, and in ``/healthz``.

Shutdown (SIGTERM/SIGINT or :meth:`Daemon.request_stop`): stop capture, let each worker finish
the frames already queued (the window in progress completes and its events are emitted), then
flush the sinks (the MQTT sink publishes what the broker takes within the remaining time; the
rest stays in the spool for the next start), publish availability ``offline``, stop HTTP. All of
it within ``daemon.shutdown_timeout_s``.
"""

import logging
import signal
import threading
import time

from edge.errors import EdgekitError
from edge.reduced_decode import reduce_box
from edge.serve.capture import CaptureThread, FrameQueue
from edge.serve.config import resolve_target
from edge.serve.dispatch import Dispatcher
from edge.serve.events import AlertRule, EventFactory, RegionEvents, event_types
from edge.serve.model_check import (describe_policies, event_policies, legacy_notes,
                                    model_problems, rule_task)
from edge.serve.threadname import name_os_thread
from edge.serve.worker import Worker

log = logging.getLogger("edgekit.serve")

WHOLE_FRAME = "frame"


class Camera(object):
    """A camera's parts: queue, capture thread, runner, worker."""

    def __init__(self, name, cfg, runner, region_names, region_events, dispatcher):
        self.name = name
        self.queue = FrameQueue(cfg["queue"])
        self.capture = CaptureThread(name, cfg, self.queue)
        self.worker = Worker(name, runner, region_names, region_events, self.queue,
                             self.capture, dispatcher)
        self.rates = {"fps_in": 0.0, "fps_processed": 0.0}
        self._last = None

    def update_rates(self, now):
        counts = (self.capture.frames_in, self.worker.frames_processed)
        if self._last is not None:
            then, before = self._last
            span = now - then
            if span > 0:
                self.rates["fps_in"] = round((counts[0] - before[0]) / span, 2)
                self.rates["fps_processed"] = round((counts[1] - before[1]) / span, 2)
        self._last = (now, counts)

    def snapshot(self):
        data = self.capture.snapshot()
        data.update(self.worker.snapshot())
        data.update(self.rates)
        if data["error"]:
            data["status"] = "misconfigured"
        return data


class Daemon(object):
    def __init__(self, cfg):
        self.cfg = cfg
        self.cameras = []
        self.sinks = []
        self.http = None
        self.problems = []          # what could not start, for the log and /healthz
        self.factory = EventFactory()
        self.dispatcher = Dispatcher()
        self._stop = threading.Event()
        self._supervisor = None
        self._started_at = None
        self.exit_reason = None

    # -- build -----------------------------------------------------------------------------------

    def build(self):
        """Create everything; EdgekitError only for what makes the whole daemon useless."""
        from edge.manifest import Manifest
        from edge.runner import StreamingRunner

        cfg = self.cfg
        model = resolve_target(cfg.model)
        manifest = Manifest.load(model["dir"])
        problems = model_problems(cfg, manifest)
        if problems:
            raise EdgekitError("the config does not match the model directory:\n  %s"
                               % "\n  ".join(problems))
        gallery = None
        if model.get("gallery"):
            from edge.gallery import Gallery
            gallery = Gallery.load(model["gallery"])
        policies = event_policies(cfg.events, manifest, gallery is not None)
        kinds = {t.name: t.kind for t in manifest.tasks}
        rules = [AlertRule(r, kinds[rule_task(r)], rule_task(r)) for r in cfg.alerts]
        self.factory.declare(event_types(policies))
        log.info("events: %s; %d alert rule(s)", describe_policies(policies, manifest),
                 len(rules))
        for note in legacy_notes(cfg):
            log.warning("config: %s", note)

        for name, camera_cfg in cfg.cameras.items():
            if not camera_cfg["enabled"]:
                continue
            regions = camera_cfg.get("regions") or {}
            region_names = list(regions) or [WHOLE_FRAME]
            scale = camera_cfg["decode_scale"]  # frames arrive reduced: so do their regions
            runner = StreamingRunner(
                model["dir"], device=model["backend"], threads=model["threads"],
                stride=model.get("stride"),
                rois=[reduce_box(box, scale) for box in regions.values()] or None,
                gallery=gallery, unknown_threshold=model.get("unknown_threshold"),
                gap_policy=model["gap_policy"], max_skip=model["max_skip"],
                max_gap_s=model.get("max_gap_s"))
            region_events = [RegionEvents(name, region, self.factory, policies, rules)
                             for region in region_names]
            self.cameras.append(Camera(name, camera_cfg, runner, region_names, region_events,
                                       self.dispatcher))

        if cfg.jsonl is not None:
            from edge.serve.jsonl import JsonlSink
            try:
                self._add_sink(JsonlSink(cfg.jsonl["path"], cfg.jsonl["max_bytes"],
                                         cfg.jsonl["keep"]))
            except EdgekitError as exc:
                self.problems.append(str(exc))
        if cfg.mqtt is not None:
            from edge.serve.mqtt import MqttSink
            try:
                sink = MqttSink(cfg.mqtt)
            except EdgekitError as exc:
                self.problems.append(str(exc))
            else:
                self._add_sink(sink)
                why = sink.probe()
                if why is not None:
                    self.problems.append("MQTT broker %s; events are spooled in %s and sent when "
                                         "it is reachable" % (why, cfg.mqtt["spool_dir"]))
        if not self.sinks:
            raise EdgekitError("no output could be started, events would go nowhere:\n  %s"
                               % "\n  ".join(self.problems))

        if cfg.http["enabled"]:
            from edge.serve.http import HttpServer
            try:
                self.http = HttpServer(self, cfg.http["bind"], cfg.http["port"])
            except EdgekitError as exc:
                self.problems.append(str(exc))
        return self

    def _add_sink(self, sink):
        self.sinks.append(sink)
        self.dispatcher.add(sink)

    # -- run -------------------------------------------------------------------------------------

    def start(self):
        self._started_at = time.monotonic()
        for sink in self.sinks:
            if hasattr(sink, "start"):
                sink.start()
        for camera in self.cameras:
            camera.worker.start()
            camera.capture.start()
        if self.http is not None:
            self.http.start()
        self._supervisor = threading.Thread(target=self._supervise, name="supervisor",
                                            daemon=True)
        self._supervisor.start()
        log.info("started: %s; outputs: %s; http: %s",
                 ", ".join("%s (%d region(s))" % (c.name, len(c.worker.region_names))
                           for c in self.cameras),
                 ", ".join(s.name for s in self.sinks),
                 "%s:%d" % (self.http.bind, self.http.port) if self.http else "off")
        for problem in self.problems:
            log.warning("could not start: %s", problem)

    def _supervise(self):
        name_os_thread()
        while not self._stop.wait(0.5):
            now = time.monotonic()
            for camera in self.cameras:
                camera.capture.check_stall(now)
                camera.update_rates(now)

    def request_stop(self, reason="requested"):
        self.exit_reason = reason
        self._stop.set()

    def run(self, install_signals=True):
        """Start, block until a signal or :meth:`request_stop`, shut down. Main thread only for
        signals."""
        if install_signals:
            def handler(signum, frame):
                self.request_stop(signal.Signals(signum).name)
            signal.signal(signal.SIGTERM, handler)
            signal.signal(signal.SIGINT, handler)
        self.start()
        while not self._stop.wait(1.0):
            pass
        self.shutdown()

    def shutdown(self):
        timeout = float(self.cfg.daemon["shutdown_timeout_s"])
        deadline = time.monotonic() + timeout
        log.info("stopping (%s)", self.exit_reason or "requested")
        self._stop.set()
        for camera in self.cameras:
            camera.capture.stop()
        for camera in self.cameras:
            camera.capture.join(max(0.1, (deadline - time.monotonic()) / 3))
            camera.worker.stop()
        for camera in self.cameras:
            camera.worker.join(max(0.1, (deadline - time.monotonic()) / 2))
        for sink in self.sinks:
            try:
                sink.close(timeout=max(0.1, deadline - time.monotonic()))
            except Exception:  # noqa: BLE001 - close the others regardless
                log.exception("closing sink %s failed", sink.name)
        if self.http is not None:
            self.http.close()
        left = [s for s in self.sinks if getattr(s, "spool", None) is not None
                and s.spool.depth > 0]
        for sink in left:
            log.warning("%d event(s) stay in the spool %s and are sent at the next start",
                        sink.spool.depth, sink.spool.directory)
        log.info("stopped: %d event(s) emitted", self.dispatcher.emitted)

    # -- reporting -------------------------------------------------------------------------------

    def stats(self):
        return {
            "uptime_s": round(time.monotonic() - (self._started_at or time.monotonic()), 3),
            "run_id": self.factory.run_id,
            "cameras": {c.name: c.snapshot() for c in self.cameras},
            "events": dict(self.factory.counts),
            "sinks": {s.name: s.snapshot() for s in self.sinks},
            "sink_failures": dict(self.dispatcher.failures),
            "problems": list(self.problems),
        }

    def health(self):
        cameras = {}
        ok = True
        for camera in self.cameras:
            snap = camera.snapshot()
            cameras[camera.name] = {k: snap[k] for k in (
                "status", "last_error", "reconnects", "stalls", "seconds_since_frame",
                "frames_in", "error")}
            ok = ok and snap["status"] == "streaming"
        sinks = {}
        for sink in self.sinks:
            snap = sink.snapshot()
            if sink.name == "mqtt":
                sinks["mqtt"] = {"connected": snap["connected"],
                                 "spool_depth": snap["spool_depth"],
                                 "last_error": snap["last_error"]}
                ok = ok and snap["connected"]
            else:
                sinks[sink.name] = {"ok": True}
        return ok, {"status": "ok" if ok else "degraded", "cameras": cameras, "sinks": sinks,
                    "problems": list(self.problems)}

