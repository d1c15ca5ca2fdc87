"""The MQTT sink: events to a broker with QoS 1, through the on-disk spool, with availability.

Why this shape:

- ``write()`` only appends to the :class:`~edge.serve.spool.Spool` (a file append), so a slow or
  absent broker never blocks inference. A publisher thread reads the spool in order and publishes
  while connected, at most ``max_inflight`` unacknowledged at a time; the spool position moves
  only on PUBACK. paho re-sends its in-flight QoS-1 messages itself after a reconnect, in order.
- Nothing slow on the way from ``write()`` to the broker: the publisher sleeps on an event that
  ``write()`` sets, so an event is handed to paho as soon as it is spooled, and durability (the
  fsyncs, the ``acked`` file) is a separate sync thread's job every ``SYNC_INTERVAL_S``. An fsync
  on a busy disk can take a second; on the publish path it was the p99 of the event latency.
- Reconnects are paho's (``loop_start`` retries with ``reconnect_min_s`` .. ``reconnect_max_s``
  backoff), including when the broker is unreachable at start: the daemon runs, spools, and says
  so in the log and in ``/healthz``.
- Availability: ``<prefix>/availability`` is ``online`` (retained) once connected, the broker
  publishes the last will ``offline`` (retained) if the connection dies, and an orderly shutdown
  publishes ``offline`` itself before disconnecting (a clean disconnect suppresses the will).

paho's PUBACK callback runs on its network thread and applies the acknowledgement itself (the
id -> spool number map is shared under a lock), so the publisher is not woken once more per
message. It may run before ``publish()`` has returned the message id; such an early id is queued,
and the publisher applies it once it has recorded the id. On one core each wake of the publisher
is a thread switch and a GIL hand-off: with an event per frame (bench_serve.py's alert on every
window, EfficientNet-B3, one core), waking it per PUBACK made its voluntary context switches
3.7-3.9 per event; with the PUBACK applied on paho's thread, 2.2.
"""

import collections
import json
import logging
import socket
import ssl
import sys
import threading
import time

from edge.errors import EdgekitError
from edge.serve.dispatch import Recent
from edge.serve.spool import Spool
from edge.serve.threadname import name_os_thread

log = logging.getLogger("edgekit.serve.mqtt")

SYNC_INTERVAL_S = 0.5
MAX_TIMED = 10000  # messages whose enqueue time is kept for the latency figures


def _paho():
    try:
        import paho.mqtt.client as mqtt
    except ImportError:
        raise EdgekitError("outputs.mqtt needs paho-mqtt, which is not installed; install the "
                           "daemon's extras with: pip install 'edgekit[serve]'")
    return mqtt


def topic_for(prefix, event):
    return "%s/events/%s/%s/%s" % (prefix, event["camera"], event["region"], event["type"])


class MqttSink(object):
    name = "mqtt"

    def __init__(self, cfg):
        mqtt = _paho()
        self.cfg = cfg
        self.host = cfg["host"]
        self.port = int(cfg["port"])
        self.prefix = cfg["topic_prefix"]
        self.availability_topic = self.prefix + "/availability"
        self.max_inflight = int(cfg["max_inflight"])
        self.spool = Spool(cfg["spool_dir"], cfg["spool_max_bytes"])
        self.connected = False
        self.connects = 0
        self.published = 0
        self.acked = 0
        self.last_error = None
        self._acks = collections.deque()    # (mid, arrival time) acked before publish() returned
        self._mid_to_n = {}                 # in flight: mid -> spool n, under _ack_lock
        self._ack_lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._closing = False
        self._thread = None
        self._sync_thread = None
        self._enqueued_at = {}              # spool n -> monotonic time of write()
        self._sent_at = {}                  # spool n -> enqueue time, while in flight
        self.latency = {"write_to_publish": Recent(), "write_to_ack": Recent(),
                        "checkpoint": Recent()}

        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=cfg["client_id"],
                             protocol=mqtt.MQTTv311, clean_session=True)
        client.max_inflight_messages_set(self.max_inflight + 2)  # + availability
        client.max_queued_messages_set(0)
        client.will_set(self.availability_topic, "offline", qos=1, retain=True)
        password = cfg.get("password")
        if cfg.get("password_file"):
            try:
                with open(cfg["password_file"], "r", encoding="utf-8") as handle:
                    password = handle.readline().rstrip("\r\n")
            except OSError as exc:
                raise EdgekitError("outputs.mqtt.password_file: cannot read %s (%s)"
                                   % (cfg["password_file"], exc))
        if cfg.get("username"):
            client.username_pw_set(cfg["username"], password)
        tls = cfg.get("tls")
        if tls is not None:
            try:
                client.tls_set(ca_certs=tls.get("ca_file"), certfile=tls.get("cert_file"),
                               keyfile=tls.get("key_file"))
            except (OSError, ValueError) as exc:
                raise EdgekitError("outputs.mqtt.tls: cannot load the certificates (%s); check "
                                   "ca_file, cert_file and key_file" % exc)
            client.tls_insecure_set(bool(tls.get("insecure")))
        client.reconnect_delay_set(cfg["reconnect_min_s"], cfg["reconnect_max_s"])
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_connect_fail = self._on_connect_fail
        self.client = client

    # -- lifecycle -------------------------------------------------------------------------------

    def probe(self, timeout=2.0):
        """None if a connection to the broker (with its TLS handshake, if configured) works
        now, else why not (for the start log)."""
        tls = self.cfg.get("tls")
        try:
            with socket.create_connection((self.host, self.port), timeout=timeout) as sock:
                if tls is not None:
                    context = ssl.create_default_context(cafile=tls.get("ca_file"))
                    if tls.get("cert_file"):
                        context.load_cert_chain(tls["cert_file"], tls.get("key_file"))
                    if tls.get("insecure"):
                        context.check_hostname = False
                    with context.wrap_socket(sock, server_hostname=self.host):
                        pass
                return None
        except OSError as exc:
            return self._why(exc)

    def _why(self, exc):
        """A connection failure as one line, saying which setting to check."""
        if isinstance(exc, ssl.SSLError):
            detail = getattr(exc, "verify_message", None)
            detail = ("certificate verify failed: %s" % detail if detail
                      else exc.reason or str(exc))
            return ("%s:%d: TLS handshake failed (%s); check outputs.mqtt.tls.ca_file (the CA "
                    "that signed the broker's certificate) and that the broker's certificate "
                    "names %s" % (self.host, self.port, detail, self.host))
        return "%s:%d unreachable (%s)" % (self.host, self.port, exc)

    def start(self):
        self.client.connect_async(self.host, self.port, keepalive=int(self.cfg["keepalive_s"]))
        self.client.loop_start()
        self._thread = threading.Thread(target=self._publish_loop, name="mqtt-publisher",
                                        daemon=True)
        self._thread.start()
        self._sync_thread = threading.Thread(target=self._sync_loop, name="mqtt-spool-sync",
                                             daemon=True)
        self._sync_thread.start()

    def write(self, event):
        n = self.spool.append(topic_for(self.prefix, event),
                              json.dumps(event, separators=(",", ":")))
        if len(self._enqueued_at) < MAX_TIMED:
            self._enqueued_at[n] = time.monotonic()
        self._wake.set()

    def flush(self, timeout=5.0):
        """Wait until the spool is empty (all acknowledged) or ``timeout``; True if empty."""
        deadline = time.monotonic() + timeout
        self._wake.set()
        while self.spool.depth > 0 and time.monotonic() < deadline:
            if not self.connected:
                break
            time.sleep(0.01)
        return self.spool.depth == 0

    def close(self, timeout=5.0):
        """Publish what the broker will take within ``timeout``, say ``offline``, disconnect.

        What is not acknowledged stays in the spool for the next start."""
        self.flush(timeout)
        self._closing = True
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
        if self._sync_thread is not None:
            self._sync_thread.join(timeout=2.0)
        self._apply_acks()
        if self.connected:
            info = self.client.publish(self.availability_topic, "offline", qos=1, retain=True)
            try:
                info.wait_for_publish(timeout=min(2.0, timeout))
            except (RuntimeError, ValueError):
                pass
        self.client.disconnect()
        self.client.loop_stop()
        self.spool.close()

    # -- paho callbacks (network thread) ---------------------------------------------------------

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            self.last_error = "broker refused the connection: %s" % reason_code
            log.error("MQTT %s:%d: %s (check outputs.mqtt.username/password)", self.host,
                      self.port, reason_code)
            return
        self.connected = True
        self.connects += 1
        self.last_error = None
        log.info("MQTT connected to %s:%d; %d spooled message(s) to send", self.host, self.port,
                 self.spool.depth)
        client.publish(self.availability_topic, "online", qos=1, retain=True)
        self._wake.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties):
        if self.connected and not self._closing:
            log.warning("MQTT disconnected from %s:%d (%s); spooling", self.host, self.port,
                        reason_code)
        self.connected = False

    def _on_connect_fail(self, client, userdata):
        # paho calls this from inside its ``except OSError`` around the connect, and passes no
        # exception: sys.exc_info() still has it, which tells a TLS failure from a refused port.
        exc = sys.exc_info()[1]
        why = self._why(exc) if exc is not None else "%s:%d unreachable" % (self.host, self.port)
        if why != self.last_error:
            log.warning("MQTT: %s; spooling", why)
        self.last_error = why

    def _on_publish(self, client, userdata, mid, reason_code, properties):
        now = time.monotonic()
        with self._ack_lock:
            full = len(self._mid_to_n) >= self.max_inflight
            n = self._mid_to_n.pop(mid, None)
            if n is None:  # publish() has not returned this id yet, or availability
                self._acks.append((mid, now))
            else:
                self._acked_locked(n, now)
        if n is None or full:
            self._wake.set()  # the publisher applies the early id / has room again

    # -- publisher thread ------------------------------------------------------------------------

    def _publish_loop(self):
        name_os_thread()
        while not self._stop.is_set():
            self._wake.wait(1.0)
            self._wake.clear()
            self._apply_acks()
            while self.connected and len(self._mid_to_n) < self.max_inflight \
                    and not self._stop.is_set():
                record = self.spool.next()
                if record is None:
                    break
                n, topic, payload = record
                info = self.client.publish(topic, payload, qos=1)  # never under _ack_lock
                enqueued = self._enqueued_at.pop(n, None)
                with self._ack_lock:  # before paho's thread can apply this id's PUBACK
                    if enqueued is not None:
                        self._sent_at[n] = enqueued
                    self._mid_to_n[info.mid] = n
                self.published += 1
                if enqueued is not None:
                    self.latency["write_to_publish"].add((time.monotonic() - enqueued) * 1e3)
                self._apply_acks()
        self._apply_acks()

    def _sync_loop(self):
        """Durability off the publish path: fsync and persist the acknowledged position."""
        name_os_thread()
        while not self._stop.wait(SYNC_INTERVAL_S):
            self._checkpoint()

    def _checkpoint(self):
        start = time.monotonic()
        try:
            self.spool.checkpoint()
        except OSError as exc:  # a full or failing disk: keep publishing, say so
            self.last_error = "spool checkpoint failed: %s" % exc
            log.error("MQTT spool %s: checkpoint failed (%s)", self.spool.directory, exc)
            return
        self.latency["checkpoint"].add((time.monotonic() - start) * 1e3)

    def _apply_acks(self):
        # The ids acknowledged before publish() returned them. Only the publisher thread calls
        # this, and it records a message's id right after publish() returns, before calling
        # here: an id still not in the map is an availability message (not spooled).
        with self._ack_lock:
            acks = self._acks
            while acks:
                mid, arrived = acks.popleft()
                n = self._mid_to_n.pop(mid, None)
                if n is not None:
                    self._acked_locked(n, arrived)

    def _acked_locked(self, n, arrived):
        self.spool.ack(n)
        self.acked += 1
        enqueued = self._sent_at.pop(n, None)
        if enqueued is not None:
            self.latency["write_to_ack"].add((arrived - enqueued) * 1e3)

    def snapshot(self):
        return {"connected": self.connected, "broker": "%s:%d" % (self.host, self.port),
                "connects": self.connects, "published": self.published, "acked": self.acked,
                "spool_depth": self.spool.depth, "spool_bytes": self.spool.bytes,
                "spool_dropped": self.spool.dropped, "inflight": len(self._mid_to_n),
                "last_error": self.last_error,
                "latency_ms": {k: v.summary() for k, v in self.latency.items()}}
