"""HTTP: ``/healthz`` (per-camera status), ``/stats`` (JSON) and ``/metrics`` (Prometheus).

Why read-only snapshots: the hot path only bumps plain counters; all three endpoints build their
answer from the daemon's ``stats()`` when asked, so a scrape every few seconds costs nothing per
frame. ``/metrics`` uses a prometheus-client collector over the same snapshot (no metric objects
updated per frame).

``/healthz`` answers 200 when every enabled camera is streaming and every sink is up, else 503,
with the per-camera status in the body either way (systemd/docker health checks read the code,
people read the body).

Bound to 127.0.0.1 by default: the endpoints are for the box and its local agent, not the LAN.
"""

import errno
import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from edge.errors import EdgekitError
from edge.serve.threadname import name_os_thread

log = logging.getLogger("edgekit.serve.http")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def metrics_text(stats):
    """The Prometheus exposition of a ``stats()`` snapshot (needs prometheus-client)."""
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    class _Collector(object):
        def collect(self):
            cams = stats["cameras"]

            def per_camera(cls, name, doc, getter):
                family = cls(name, doc, labels=["camera"])
                for cam, s in sorted(cams.items()):
                    value = getter(s)
                    if value is not None:
                        family.add_metric([cam], float(value))
                return family

            yield per_camera(GaugeMetricFamily, "edgekit_camera_up",
                             "1 if the camera is streaming", lambda s: s["status"] == "streaming")
            yield per_camera(CounterMetricFamily, "edgekit_frames_in",
                             "frames read from the source", lambda s: s["frames_in"])
            yield per_camera(CounterMetricFamily, "edgekit_frames_processed",
                             "frames run through the model", lambda s: s["frames_processed"])
            yield per_camera(CounterMetricFamily, "edgekit_frames_dropped",
                             "frames dropped because inference fell behind",
                             lambda s: s["dropped"])
            yield per_camera(CounterMetricFamily, "edgekit_reconnects",
                             "source reconnects", lambda s: s["reconnects"])
            yield per_camera(CounterMetricFamily, "edgekit_stalls",
                             "watchdog stalls", lambda s: s["stalls"])
            yield per_camera(CounterMetricFamily, "edgekit_windows",
                             "windows classified", lambda s: s["windows"])
            yield per_camera(GaugeMetricFamily, "edgekit_fps_in",
                             "frames per second read", lambda s: s["fps_in"])
            yield per_camera(GaugeMetricFamily, "edgekit_fps_processed",
                             "frames per second processed", lambda s: s["fps_processed"])
            yield per_camera(GaugeMetricFamily, "edgekit_queue_depth",
                             "frames waiting for inference", lambda s: s["queue_depth"])
            timing = GaugeMetricFamily("edgekit_inference_ms", "moving average per stage, ms",
                                       labels=["camera", "stage"])
            total = CounterMetricFamily("edgekit_inference_time_ms", "total per stage over all "
                                        "windows, ms (rate / rate(edgekit_windows) = mean)",
                                        labels=["camera", "stage"])
            warm = GaugeMetricFamily("edgekit_buffer_warmup", "ring fill 0..1",
                                     labels=["camera", "region"])
            for cam, s in sorted(cams.items()):
                for stage, value in sorted(s["inference_ms"].items()):
                    timing.add_metric([cam, stage], value)
                for stage, value in sorted(s["inference_total_ms"].items()):
                    total.add_metric([cam, stage], value)
                for region, value in sorted(s["warmup"].items()):
                    warm.add_metric([cam, region], value)
            yield timing
            yield total
            yield warm
            events = CounterMetricFamily("edgekit_events", "events emitted", labels=["type"])
            for kind, value in sorted(stats["events"].items()):
                events.add_metric([kind], value)
            yield events
            mqtt = stats["sinks"].get("mqtt")
            if mqtt is not None:
                yield GaugeMetricFamily("edgekit_mqtt_connected", "1 if connected to the broker",
                                        value=float(mqtt["connected"]))
                yield GaugeMetricFamily("edgekit_spool_depth", "messages not yet acknowledged",
                                        value=mqtt["spool_depth"])
                yield CounterMetricFamily("edgekit_mqtt_published", "messages published",
                                          value=mqtt["published"])
                yield CounterMetricFamily("edgekit_spool_dropped",
                                          "messages dropped because the spool was full",
                                          value=mqtt["spool_dropped"])
            yield GaugeMetricFamily("edgekit_uptime_seconds", "seconds since start",
                                    value=stats["uptime_s"])

    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector())
    return generate_latest(registry)


class HttpServer(object):
    """Serve the daemon's ``health()`` and ``stats()`` on ``bind:port`` in a thread."""

    def __init__(self, daemon, bind, port):
        self.daemon = daemon
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                owner._handle(self)

            def log_message(self, fmt, *args):
                log.debug("http: " + fmt, *args)

        try:
            self.server = _Server((bind, int(port)), Handler)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise EdgekitError("http: %s:%s is already in use (another edgekit serve?); set "
                                   "http.port to a free port or stop the other process"
                                   % (bind, port))
            raise EdgekitError("http: cannot listen on %s:%s (%s); check http.bind"
                               % (bind, port, exc))
        self.bind = bind
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self._serve, name="http", daemon=True)

    def _serve(self):
        name_os_thread()
        self.server.serve_forever(poll_interval=0.2)

    def start(self):
        self._thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def _handle(self, request):
        path = request.path.split("?", 1)[0].rstrip("/") or "/"
        try:
            if path == "/healthz":
                ok, body = self.daemon.health()
                self._send(request, 200 if ok else 503, json.dumps(body, indent=1))
            elif path == "/stats":
                self._send(request, 200, json.dumps(self.daemon.stats(), indent=1))
            elif path == "/metrics":
                try:
                    text = metrics_text(self.daemon.stats())
                except ImportError:
                    self._send(request, 501, "prometheus-client is not installed; pip install "
                               "'edgekit[serve]'\n", "text/plain")
                    return
                self._send(request, 200, text, "text/plain; version=0.0.4; charset=utf-8")
            else:
                self._send(request, 404, json.dumps({"error": "not found", "endpoints": [
                    "/healthz", "/stats", "/metrics"]}))
        except Exception as exc:  # noqa: BLE001 - never let a scrape kill the server thread
            log.exception("http: %s failed", path)
            self._send(request, 500, json.dumps({"error": str(exc)}))

    @staticmethod
    def _send(request, code, body, content_type="application/json"):
        data = body if isinstance(body, bytes) else body.encode("utf-8")
        request.send_response(code)
        request.send_header("Content-Type", content_type)
        request.send_header("Content-Length", str(len(data)))
        request.end_headers()
        request.wfile.write(data)
