"""The daemon end to end: a real subprocess, a real mosquitto, real video files.

Every wait is bounded (HTTP polling and MQTT waits with timeouts, subprocess waits with
timeouts); no assertion depends on how fast anything ran.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from tests.fixtures.edge import make_frames, write_avi
from tests.fixtures.mosquitto import Broker, Collector, free_port, make_certs
from tests.fixtures.stall_http import StallingCamera

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PREFIX = "edgekit/test"
EVENT_KEYS = {"id", "seq", "type", "camera", "region", "time", "frame_time", "frames",
              "stream_time", "label", "score"}
REGIONS = {"lane1": [0, 0, 32, 32], "lane2": [32, 16, 32, 32]}


@pytest.fixture(scope="module")
def pool_video(tmp_path_factory):
    return str(write_avi(tmp_path_factory.mktemp("serve_video") / "pool.avi",
                         make_frames(48, seed=3)))


@pytest.fixture(scope="module")
def alert_label(edge_model_dir, pool_video):
    """The action label the model gives lane1 for two windows in a row on this video: an alert
    rule on it must fire (computed with the runner itself, so nothing is faked)."""
    from edge.runner import StreamingRunner
    from edge.sources import FrameSource

    runner = StreamingRunner(edge_model_dir, rois=[tuple(REGIONS["lane1"])])
    labels = [r.tasks["action"].label for i, t, f in FrameSource(pool_video)
              for r in runner.process(f, i, t)]
    for a, b in zip(labels, labels[1:]):
        if a == b:
            return a
    pytest.fail("the tiny model never repeats a label on lane1: %s" % labels)


def toml_value(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[%s]" % ", ".join(toml_value(v) for v in value)
    return repr(value)


def write_config(path, sections):
    """``sections``: {"model": {...}, "cameras.pool": {...}, "[[alerts]]": [{...}], ...}."""
    lines = []
    for name, table in sections.items():
        if name.startswith("[["):
            for entry in table:
                lines.append(name)
                lines += ["%s = %s" % (k, toml_value(v)) for k, v in entry.items()]
            continue
        lines.append("[%s]" % name)
        lines += ["%s = %s" % (k, toml_value(v)) for k, v in table.items()]
    with open(path, "w") as handle:
        handle.write("\n".join(lines) + "\n")
    return str(path)


def base_config(tmp_path, model_dir, video, mqtt_port=None, http_port=None, alert=None,
                **mqtt_extra):
    sections = {
        "model": {"dir": model_dir, "threads": 1},
        "events": {"debounce_windows": 1},
        "cameras.pool": {"source": video, "fps": 60, "reconnect_min_s": 0.1,
                         "reconnect_max_s": 0.5},
        "cameras.pool.regions": dict(REGIONS),
        "outputs.jsonl": {"path": str(tmp_path / "events.jsonl")},
        "http": {"port": http_port or free_port()},
        "daemon": {"shutdown_timeout_s": 5, "log_level": "info"},
    }
    if alert:
        sections["[[alerts]]"] = [{"name": "test-alert", "task": "action", "label": alert,
                                   "min_score": 0.0, "consecutive": 2, "cooldown_s": 3600}]
    if mqtt_port:
        mqtt = {"host": "127.0.0.1", "port": mqtt_port, "topic_prefix": PREFIX,
                "client_id": "edgekit-test-%d" % os.getpid(), "spool_dir": str(tmp_path / "spool"),
                "reconnect_min_s": 0.1, "reconnect_max_s": 0.5}
        tls = mqtt_extra.pop("tls", None)
        mqtt.update(mqtt_extra)
        sections["outputs.mqtt"] = mqtt
        if tls is not None:
            sections["outputs.mqtt.tls"] = tls
    return sections


class Daemon(object):
    """``edgekit serve`` in a subprocess; stderr goes to a file (no pipe to fill up)."""

    def __init__(self, config_path, sections, log_path):
        self.http_port = sections["http"]["port"]
        self.log_path = str(log_path)
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "edge.cli", "serve", "--config", config_path], cwd=ROOT,
            stdout=self._log, stderr=subprocess.STDOUT,
            env=dict(os.environ, PYTHONUNBUFFERED="1"))

    def get(self, path, timeout=2.0):
        """(status, body) of GET path, or (None, None) while the server is not up."""
        url = "http://127.0.0.1:%d%s" % (self.http_port, path)
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                return response.status, response.read().decode("utf-8")
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode("utf-8")
        except (urllib.error.URLError, OSError):
            return None, None

    def stats(self):
        code, body = self.get("/stats")
        return json.loads(body) if code == 200 else None

    def wait_stats(self, predicate, timeout=60.0):
        deadline = time.monotonic() + timeout
        stats = None
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, "daemon exited early:\n" + self.log()
            stats = self.stats()
            if stats is not None and predicate(stats):
                return stats
            time.sleep(0.1)
        raise AssertionError("timed out waiting; last stats: %s\nlog:\n%s" % (
            json.dumps(stats, indent=1), self.log()))

    def terminate(self, timeout=30.0):
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        finally:
            self.kill()

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._log.close()

    def log(self):
        with open(self.log_path, errors="replace") as handle:
            return handle.read()


@pytest.fixture
def start_daemon(tmp_path):
    started = []

    def start(sections, name="serve.toml"):
        path = write_config(tmp_path / name, sections)
        daemon = Daemon(path, sections, tmp_path / (name + ".log"))
        started.append(daemon)
        return daemon

    yield start
    for daemon in started:
        daemon.kill()


def read_jsonl(path):
    with open(path) as handle:
        return [json.loads(line) for line in handle]


def events_total(stats):
    return sum(stats["events"].values())


def test_events_reach_mqtt_and_jsonl_and_sigterm_flushes(mosquitto, start_daemon, tmp_path,
                                                         edge_model_dir, pool_video,
                                                         alert_label):
    collector = Collector(mosquitto.port, PREFIX + "/#")
    try:
        sections = base_config(tmp_path, edge_model_dir, pool_video, mosquitto.port,
                               alert=alert_label)
        daemon = start_daemon(sections)
        daemon.wait_stats(lambda s: s["events"]["alert"] >= 1 and events_total(s) >= 10
                          and s["sinks"]["mqtt"]["acked"] >= 10)
        code, body = daemon.get("/healthz")
        health = json.loads(body)
        assert health["sinks"]["mqtt"]["connected"] is True
        assert set(health["cameras"]) == {"pool"}
        code, metrics = daemon.get("/metrics")
        assert code == 200
        assert 'edgekit_frames_processed_total{camera="pool"}' in metrics
        assert "edgekit_mqtt_connected 1.0" in metrics
        # per-stage totals: over all windows, so any interval's mean is a difference of two reads
        assert 'edgekit_inference_time_ms_total{camera="pool",stage="frame_model"}' in metrics
        pool = daemon.stats()["cameras"]["pool"]
        totals = pool["inference_total_ms"]
        assert set(totals) == {"preprocess", "frame_model", "step", "head"}
        assert all(v > 0 for v in totals.values()), totals
        assert daemon.terminate() == 0, daemon.log()
        collector.wait_for(lambda c: "offline" in c.payloads(PREFIX + "/availability"), 10)
        availability = collector.payloads(PREFIX + "/availability")
        assert availability[0] == "online" and availability[-1] == "offline"
        written = read_jsonl(tmp_path / "events.jsonl")
        # everything written before the exit reached the broker: the spool was flushed
        collector.wait_for(lambda c: len({e["id"] for e in c.events()}) >= len(written), 10)
    finally:
        collector.close()
    received = collector.events()
    assert {e["id"] for e in received} == {e["id"] for e in written}
    assert [e["seq"] for e in written] == list(range(1, len(written) + 1))
    for topic, payload, retain in collector.messages:
        if "/events/" not in topic:
            continue
        event = json.loads(payload)
        assert EVENT_KEYS <= set(event), event
        assert topic == "%s/events/pool/%s/%s" % (PREFIX, event["region"], event["type"])
        assert event["region"] in REGIONS and not retain
        assert event["frames"][1] - event["frames"][0] >= 0
    alerts = [e for e in written if e["type"] == "alert"]
    assert alerts and all(a["rule"] == "test-alert" and a["label"] == alert_label
                          and a["windows"] >= 2 for a in alerts)
    # cooldown 3600 s: at most one alert per region
    assert len(alerts) == len({a["region"] for a in alerts})
    with open(tmp_path / "spool" / "acked") as handle:
        assert int(handle.read()) == len(written)


def test_broker_outage_loses_no_event_and_replays_in_order(mosquitto_factory, start_daemon,
                                                           tmp_path, edge_model_dir, pool_video):
    # The broker keeps the *collector's* session across its restart (persistence), so the
    # collector does not miss what the daemon replays before it resubscribes. That cannot hide
    # a loss by the daemon: while the broker is down, its events exist only in the daemon's spool.
    broker = mosquitto_factory("broker", persistence=True).start()
    collector = Collector(broker.port, PREFIX + "/events/#", client_id="collector-outage",
                          clean_session=False)
    try:
        daemon = start_daemon(base_config(tmp_path, edge_model_dir, pool_video, broker.port))
        daemon.wait_stats(lambda s: s["sinks"]["mqtt"]["acked"] >= 5)
        broker.stop(signal.SIGTERM)
        before = daemon.wait_stats(lambda s: not s["sinks"]["mqtt"]["connected"])
        daemon.wait_stats(lambda s: s["sinks"]["mqtt"]["spool_depth"] >= 5
                          and events_total(s) >= events_total(before) + 5)
        code, body = daemon.get("/healthz")
        assert code == 503 and json.loads(body)["sinks"]["mqtt"]["connected"] is False
        broker.start()
        daemon.wait_stats(lambda s: s["sinks"]["mqtt"]["connected"]
                          and s["sinks"]["mqtt"]["spool_depth"] == 0)
        assert daemon.terminate() == 0, daemon.log()
        written = read_jsonl(tmp_path / "events.jsonl")
        collector.wait_for(lambda c: len({e["id"] for e in c.events()}) >= len(written), 20)
    finally:
        collector.close()
    received = collector.events()
    ids = [e["id"] for e in received]
    assert set(ids) == {e["id"] for e in written}, "lost: %s" % (
        sorted({e["id"] for e in written} - set(ids)))
    first_seen = []
    for event in received:
        if event["seq"] not in first_seen:
            first_seen.append(event["seq"])
    assert first_seen == sorted(first_seen), "replayed out of order"


def test_unreachable_broker_at_start_spools_then_delivers(start_daemon, tmp_path, edge_model_dir,
                                                          pool_video):
    port = free_port()
    sections = base_config(tmp_path, edge_model_dir, pool_video, port)
    # model.target: the interpreter settings come from the repo's devices.toml [devices.cpu]
    del sections["model"]["threads"]
    sections["model"].update(target="cpu", devices_file=os.path.join(ROOT, "devices.toml"))
    daemon = start_daemon(sections)
    stats = daemon.wait_stats(lambda s: s["sinks"]["mqtt"]["spool_depth"] >= 5)
    assert "MQTT broker 127.0.0.1:%d unreachable" % port in daemon.log()
    assert stats["sinks"]["mqtt"]["acked"] == 0
    code, body = daemon.get("/healthz")
    assert code == 503
    broker = Broker(tmp_path / "late-broker", port=port).start()
    try:
        stats = daemon.wait_stats(lambda s: s["sinks"]["mqtt"]["connected"]
                                  and s["sinks"]["mqtt"]["spool_depth"] == 0
                                  and s["sinks"]["mqtt"]["acked"] >= 5)
        assert daemon.terminate() == 0, daemon.log()
    finally:
        broker.stop()
    with open(tmp_path / "spool" / "acked") as handle:
        assert int(handle.read()) == len(read_jsonl(tmp_path / "events.jsonl"))


def test_broker_with_password(mosquitto_factory, start_daemon, tmp_path, edge_model_dir,
                              pool_video):
    broker = mosquitto_factory("auth", users={"edgekit": "s3cret", "reader": "r3ad"}).start()
    secret = tmp_path / "mqtt-password"
    secret.write_text("s3cret\n")
    collector = Collector(broker.port, PREFIX + "/#", username="reader", password="r3ad")
    try:
        daemon = start_daemon(base_config(tmp_path, edge_model_dir, pool_video, broker.port,
                                          username="edgekit", password_file=str(secret)))
        collector.wait_for(lambda c: len(c.events()) >= 3, 60)
        assert daemon.terminate() == 0
    finally:
        collector.close()
    assert len(collector.events()) >= 3

    wrong = tmp_path / "wrong"
    wrong.mkdir()
    sections = base_config(wrong, edge_model_dir, pool_video, broker.port, username="edgekit",
                           password="nope")
    daemon = start_daemon(sections, name="wrong.toml")
    stats = daemon.wait_stats(lambda s: s["sinks"]["mqtt"]["last_error"]
                              and s["sinks"]["mqtt"]["spool_depth"] >= 1)
    assert "refused" in stats["sinks"]["mqtt"]["last_error"]
    assert daemon.terminate() == 0


def test_cameras_that_end_are_missing_or_go_silent_reconnect_and_show_in_healthz(
        start_daemon, tmp_path, edge_model_dir, pool_video):
    # "dead" accepts the HTTP connection and sends nothing; "frozen" sends 6 MJPEG frames and
    # then nothing: their open/read timeouts end the attempt (the watchdog is set far out of the
    # way, so it cannot be what recovers them) and the camera reconnects, again and again.
    dead, frozen = StallingCamera(), StallingCamera(frames=6)
    silent = {"stall_timeout_s": 600, "open_timeout_s": 0.5, "read_timeout_s": 0.5,
              "reconnect_min_s": 0.05, "reconnect_max_s": 0.2}
    sections = base_config(tmp_path, edge_model_dir, pool_video)
    sections["cameras.gone"] = {"source": str(tmp_path / "not-there.avi"),
                                "reconnect_min_s": 0.05, "reconnect_max_s": 0.2}
    sections["cameras.dead"] = dict(silent, source=dead.url)
    sections["cameras.frozen"] = dict(silent, source=frozen.url)
    try:
        daemon = start_daemon(sections)
        stats = daemon.wait_stats(lambda s: s["cameras"]["pool"]["reconnects"] >= 2
                                  and s["cameras"]["gone"]["reconnects"] >= 3
                                  and s["cameras"]["dead"]["reconnects"] >= 2
                                  and s["cameras"]["frozen"]["reconnects"] >= 2
                                  and s["cameras"]["frozen"]["frames_in"] >= 12)
        seen = {"dead": set(), "frozen": set()}
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not all("reconnecting" in v
                                                      for v in seen.values()):
            code, body = daemon.get("/healthz")
            if code is not None:
                health = json.loads(body)
                for name in seen:
                    seen[name].add(health["cameras"][name]["status"])
            time.sleep(0.05)
        assert "reconnecting" in seen["dead"] and "reconnecting" in seen["frozen"], seen
        code, body = daemon.get("/healthz")
        health = json.loads(body)
        assert code == 503 and health["status"] == "degraded"
        assert health["cameras"]["gone"]["status"] in ("unavailable", "reconnecting")
        assert "does not exist" in health["cameras"]["gone"]["last_error"]
        assert stats["cameras"]["pool"]["frames_processed"] > 48  # played the file repeatedly
        assert stats["cameras"]["gone"]["frames_in"] == 0
        assert stats["cameras"]["dead"]["frames_in"] == 0 and dead.connections >= 2
        assert frozen.connections >= 2
        for name in ("dead", "frozen"):
            assert stats["cameras"][name]["stalls"] == 0  # the timeouts did it, not the watchdog
        assert daemon.terminate() == 0, daemon.log()
    finally:
        dead.close()
        frozen.close()
    log = daemon.log()
    assert "within open_timeout_s = 0.5 s" in log
    assert "stream stalled after 6 frames" in log and "read_timeout_s = 0.5" in log


def test_http_port_in_use_is_reported_and_events_still_flow(start_daemon, tmp_path,
                                                            edge_model_dir, pool_video):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        sections = base_config(tmp_path, edge_model_dir, pool_video, http_port=port)
        daemon = start_daemon(sections)
        path = tmp_path / "events.jsonl"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (path.exists() and path.stat().st_size):
            assert daemon.proc.poll() is None, daemon.log()
            time.sleep(0.1)
        assert daemon.terminate() == 0
    log = daemon.log()
    assert "127.0.0.1:%d is already in use" % port in log and "Traceback" not in log
    assert read_jsonl(path)


def test_bad_config_and_model_mismatch_exit_1_with_the_key(tmp_path, edge_model_dir,
                                                            pool_video):
    sections = base_config(tmp_path, edge_model_dir, pool_video)
    sections["model"]["window"] = 99
    path = write_config(tmp_path / "mismatch.toml", sections)
    proc = subprocess.run([sys.executable, "-m", "edge.cli", "serve", "--config", path],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert "model.window = 99" in proc.stderr and "Traceback" not in proc.stderr


def test_events_over_tls_and_a_ca_that_does_not_match(mosquitto_factory, start_daemon, tmp_path,
                                                      edge_model_dir, pool_video):
    certs = make_certs(tmp_path / "certs")
    other = make_certs(tmp_path / "certs", name="other-ca")
    broker = mosquitto_factory("tls", tls=certs).start()
    collector = Collector(broker.port, PREFIX + "/#", ca_file=certs["ca_file"])
    try:
        daemon = start_daemon(base_config(tmp_path, edge_model_dir, pool_video, broker.port,
                                          tls={"ca_file": certs["ca_file"]}))
        collector.wait_for(lambda c: len(c.events()) >= 3, 60)
        stats = daemon.stats()
        assert stats["sinks"]["mqtt"]["connected"] and not stats["problems"]
        assert daemon.terminate() == 0, daemon.log()
        collector.wait_for(lambda c: "offline" in c.payloads(PREFIX + "/availability"), 10)
    finally:
        collector.close()
    assert len(collector.events()) >= 3
    assert "online" in collector.payloads(PREFIX + "/availability")

    wrong = tmp_path / "wrong"
    wrong.mkdir()
    daemon = start_daemon(base_config(wrong, edge_model_dir, pool_video, broker.port,
                                      tls={"ca_file": other["ca_file"]}), name="wrong-ca.toml")
    stats = daemon.wait_stats(lambda s: s["sinks"]["mqtt"]["last_error"]
                              and s["sinks"]["mqtt"]["spool_depth"] >= 1)
    error = stats["sinks"]["mqtt"]["last_error"]
    assert "127.0.0.1:%d: TLS handshake failed" % broker.port in error
    assert "certificate verify failed" in error and "outputs.mqtt.tls.ca_file" in error
    assert stats["sinks"]["mqtt"]["acked"] == 0 and not stats["sinks"]["mqtt"]["connected"]
    assert any("TLS handshake failed" in p for p in stats["problems"])  # said at start too
    assert daemon.terminate() == 0
    assert "Traceback" not in daemon.log()


# -- the face instance ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def face_ages(edge_face_model_dir, edge_face_video):
    """The age the tiny face model gives each window of the face video (whole frame), computed
    with the runner itself: the alert thresholds below are set from it, so nothing is faked."""
    from edge.runner import StreamingRunner
    from edge.sources import FrameSource

    runner = StreamingRunner(edge_face_model_dir)
    return [r.tasks["age"].value for i, t, f in FrameSource(edge_face_video)
            for r in runner.process(f, i, t)]


def test_face_model_serves_label_events_value_events_and_age_alerts(
        mosquitto, start_daemon, tmp_path, edge_face_model_dir, edge_face_video, face_ages):
    """``edgekit serve`` with the face model against mosquitto: gender and race label events,
    age value events, and an age alert in each direction (below the middle of the video's
    ages: its youngest face held 3 windows; above it: its oldest)."""
    from edge.data.utkface import GENDERS, RACES

    middle = (min(face_ages) + max(face_ages)) / 2.0
    assert min(face_ages) < middle < max(face_ages), face_ages
    collector = Collector(mosquitto.port, PREFIX + "/#")
    try:
        sections = base_config(tmp_path, edge_face_model_dir, edge_face_video, mosquitto.port)
        del sections["cameras.pool.regions"]  # the whole frame: region "frame"
        sections["events"] = {"debounce_windows": 1}
        sections["events.tasks.age"] = {"min_change": (max(face_ages) - min(face_ages)) / 4.0}
        sections["[[alerts]]"] = [
            {"name": "young", "task": "age", "below": middle, "consecutive": 2,
             "cooldown_s": 3600},
            {"name": "old", "task": "age", "above": middle, "consecutive": 2,
             "cooldown_s": 3600}]
        daemon = start_daemon(sections)
        daemon.wait_stats(lambda s: s["events"]["alert"] >= 2 and s["events"]["gender"] >= 1
                          and s["events"]["race"] >= 1 and s["events"]["age"] >= 2
                          and s["sinks"]["mqtt"]["acked"] >= 6)
        assert set(daemon.stats()["events"]) == {"age", "gender", "race", "alert"}
        assert daemon.terminate() == 0, daemon.log()
        written = read_jsonl(tmp_path / "events.jsonl")
        collector.wait_for(lambda c: len({e["id"] for e in c.events()}) >= len(written), 10)
    finally:
        collector.close()
    assert "events: age: value changes" in daemon.log()
    received = {e["id"]: e for e in collector.events()}
    assert set(received) == {e["id"] for e in written}
    topics = {json.loads(p)["id"]: t for t, p, _ in collector.messages if "/events/" in t}
    for event in written:
        assert topics[event["id"]] == "%s/events/pool/frame/%s" % (PREFIX, event["type"])
    by_type = {}
    for event in written:
        by_type.setdefault(event["type"], []).append(event)
    assert all(e["label"] in GENDERS and set(e["scores"]) == set(GENDERS)
               for e in by_type["gender"])
    assert all(e["label"] in RACES for e in by_type["race"])
    assert by_type["gender"][0]["previous"] is None
    assert all("label" not in e and isinstance(e["value"], float) for e in by_type["age"])
    alerts = {e["rule"]: e for e in by_type["alert"]}
    assert set(alerts) == {"young", "old"} and len(by_type["alert"]) == 2  # cooldown 3600 s
    assert alerts["young"]["value"] < middle == alerts["young"]["below"]
    assert alerts["old"]["value"] > middle == alerts["old"]["above"]
    assert all(a["task"] == "age" and a["windows"] >= 2 for a in alerts.values())


def test_face_example_config_checks_against_a_face_model(tmp_path, edge_face_model_dir):
    """examples/serve-face.toml, pointed at a real face model directory, passes --check-config;
    a swimmer's rule on it is refused with the model's tasks named."""
    with open(os.path.join(ROOT, "examples", "serve-face.toml")) as handle:
        text = handle.read()
    text = text.replace('dir = "/opt/edgekit/models/face"', "dir = %s"
                        % json.dumps(edge_face_model_dir))
    good = tmp_path / "face.toml"
    good.write_text(text)
    proc = subprocess.run([sys.executable, "-m", "edge.cli", "serve", "--config", str(good),
                           "--check-config"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "OK: 1 camera(s), 1 region(s), 1 alert rule(s)" in proc.stdout
    assert "events: age: value changes > 5" in proc.stdout
    assert "gender: label changes" in proc.stdout and "race: label changes" in proc.stdout
    bad = tmp_path / "swim-rule.toml"
    bad.write_text(text + '\n[[alerts]]\nname = "drowning"\nlabel = "drowning"\n')
    proc = subprocess.run([sys.executable, "-m", "edge.cli", "serve", "--config", str(bad),
                           "--check-config"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("edgekit: error: ")
    assert "alerts[1].task: required key missing (the model's tasks: age (regression), " \
           "gender (classification), race (classification))" in proc.stderr


def test_swim_example_and_an_old_style_config_check_against_the_swim_model(tmp_path,
                                                                            edge_model_dir):
    """examples/serve.toml passes --check-config against a real swimmer model directory, and so
    does a config in the old spelling (events action/identity switches, a rule without task),
    with a note giving the new spelling."""
    with open(os.path.join(ROOT, "examples", "serve.toml")) as handle:
        text = handle.read().replace('dir = "/opt/edgekit/models/swim"',
                                     "dir = %s" % json.dumps(edge_model_dir))
    example = tmp_path / "serve.toml"
    example.write_text(text)
    old = tmp_path / "old.toml"
    old.write_text("[model]\ndir = %s\n[events]\ndebounce_windows = 2\nmin_score = 0.0\n"
                   "action = true\nidentity = false\n[[alerts]]\nname = \"drowning\"\n"
                   "label = \"drowning\"\nmin_score = 0.8\n[cameras.pool]\nsource = \"0\"\n"
                   "[outputs.jsonl]\npath = \"events.jsonl\"\n" % json.dumps(edge_model_dir))
    outputs = []
    for path in (example, old):
        proc = subprocess.run([sys.executable, "-m", "edge.cli", "serve", "--config", str(path),
                               "--check-config"], cwd=ROOT, capture_output=True, text=True,
                              timeout=120)
        assert proc.returncode == 0, proc.stderr
        outputs.append(proc.stdout)
    assert "events: action: label changes (debounce 2), identity: label changes" in outputs[0]
    assert "note" not in outputs[0]
    assert "events: action: label changes (debounce 2)" in outputs[1]
    assert "identity: label changes" not in outputs[1]
    assert "note: events.identity is the old spelling of [events.tasks.identity] enabled = " \
           "false" in outputs[1]
    assert "note: alerts[0] has no task; it watches 'action'" in outputs[1]


def test_decode_scale_reduces_frames_and_regions_and_warns_when_a_region_gets_too_small(
        start_daemon, tmp_path, edge_model_dir):
    """Two cameras on one MJPG file: at decode_scale 2 the frames arrive at half size through
    the reduced JPEG decode and the regions (given in source pixels) are halved with them; at 4
    the regions come out smaller than the model's input, which the daemon says, naming them."""
    from edge.manifest import Manifest

    size = Manifest.load(edge_model_dir).input
    w, h = size.width, size.height
    video = str(write_avi(tmp_path / "big.avi", make_frames(24, size=(4 * h, 4 * w), seed=5)))
    regions = {"left": [0, 0, 2 * w, 2 * h], "right": [2 * w, 2 * h, 2 * w, 2 * h]}
    sections = base_config(tmp_path, edge_model_dir, video)
    del sections["cameras.pool"], sections["cameras.pool.regions"]
    for name, scale in (("half", 2), ("quarter", 4)):
        sections["cameras.%s" % name] = {"source": video, "fps": 60, "decode_scale": scale,
                                         "reconnect_min_s": 0.1, "reconnect_max_s": 0.5}
        sections["cameras.%s.regions" % name] = dict(regions)
    daemon = start_daemon(sections)
    stats = daemon.wait_stats(lambda s: all(s["cameras"][c]["windows"] >= 4
                                            for c in ("half", "quarter")))
    assert daemon.terminate() == 0, daemon.log()
    for name, scale in (("half", 2), ("quarter", 4)):
        camera = stats["cameras"][name]
        assert camera["decode"] == "jpeg", camera
        assert camera["frame_size"] == [4 * h // scale, 4 * w // scale], camera
    written = read_jsonl(tmp_path / "events.jsonl")
    assert {(e["camera"], e["region"]) for e in written} >= {
        ("half", "left"), ("half", "right")}
    log = daemon.log()
    assert "cameras.quarter.regions.left (decoded at 1/4" in log
    assert "smaller than the model's %d x %d input" % (w, h) in log
    assert "cameras.half.regions" not in log
