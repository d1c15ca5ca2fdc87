"""The daemon's parts on their own: strict config, spool, frame queue, capture, events.

Real files and real objects throughout (the spool on a temp dir, OpenCV-written videos, the
runner's own WindowResult records); bounded waits only.
"""

import ast
import json
import os
import sys
import threading
import time

import numpy as np
import pytest
from click.testing import CliRunner

from edge.cli import main
from edge.errors import EdgekitError
from edge.results import TaskOutput, WindowResult
from edge.serve.capture import PULL_NICE, CaptureThread, FrameQueue
from edge.serve.config import load_config, parse_config
from edge.serve.events import AlertRule, EventFactory, RegionEvents
from edge.serve.jsonl import JsonlSink
from edge.serve.spool import Spool
from tests.fixtures.edge import make_frames, write_avi

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ACTIONS = ["breaststroke", "drowning", "freestyle", "safe"]


def minimal(**over):
    raw = {"model": {"dir": "/models/swim"},
           "cameras": {"pool": {"source": "0"}},
           "outputs": {"jsonl": {"path": "/tmp/events.jsonl"}}}
    raw.update(over)
    return raw


def test_every_serve_module_parses_as_python39():
    folder = os.path.join(ROOT, "edge", "serve")
    names = sorted(n for n in os.listdir(folder) if n.endswith(".py"))
    assert {"config.py", "daemon.py", "mqtt.py", "spool.py"} <= set(names)
    for name in names:
        with open(os.path.join(folder, name), encoding="utf-8") as handle:
            ast.parse(handle.read(), filename=name, feature_version=(3, 9))


def test_example_config_is_valid():
    cfg = load_config(os.path.join(ROOT, "examples", "serve.toml"))
    assert cfg.cameras["pool"]["regions"]["lane2"] == (0, 120, 640, 120)
    assert cfg.mqtt["topic_prefix"] == "edgekit/poolcam" and cfg.http["bind"] == "127.0.0.1"
    assert cfg.alerts[0]["consecutive"] == 3


def test_config_defaults_and_relative_paths(tmp_path):
    path = tmp_path / "serve.toml"
    path.write_text('[model]\ndir = "models/swim"\n[cameras.pool]\nsource = "pool.avi"\n'
                    '[outputs.jsonl]\npath = "events.jsonl"\n')
    cfg = load_config(str(path))
    assert cfg.model["dir"] == str(tmp_path / "models" / "swim")
    assert cfg.cameras["pool"]["source"] == str(tmp_path / "pool.avi")
    assert cfg.cameras["pool"]["queue"] == 8 and cfg.model["gap_policy"] == "hold"
    assert cfg.http == {"enabled": True, "bind": "127.0.0.1", "port": 8765}


@pytest.mark.parametrize("raw, message", [
    (minimal(extra={}), "extra: unknown section or key"),
    (minimal(model={"dir": "/m", "thread": 2}), "model.thread: unknown key"),
    (minimal(model={"dir": "/m", "threads": "2"}), "model.threads: must be an integer, got '2'"),
    (minimal(model={"dir": "/m", "threads": 0}), "model.threads: must be between 1 and 64"),
    (minimal(model={"dir": "/m", "gap_policy": "keep"}),
     "model.gap_policy: must be one of 'reset', 'hold'"),
    (minimal(cameras={"pool": {"source": "0", "fps": -1}}), "cameras.pool.fps: must be between"),
    (minimal(cameras={"pool": {"source": True}}), "cameras.pool.source: must be a camera index"),
    (minimal(cameras={"pool": {"source": "0", "regions": {"lane1": [0, 0, 0, 10]}}}),
     "cameras.pool.regions.lane1: must be [x, y, w, h]"),
    (minimal(cameras={}), "cameras: required"),
    (minimal(alerts=[{"name": "a"}]), "alerts[0].label: required key missing"),
    (minimal(alerts=[{"name": "a", "label": "drowning", "cameras": ["pier"]}]),
     "alerts[0].cameras: no camera named 'pier'"),
    (minimal(outputs={"mqtt": {"host": "h"}}), "outputs.mqtt.spool_dir: required key missing"),
    (minimal(outputs={"mqtt": {"host": "h", "spool_dir": "/s", "password": "x"}}),
     "outputs.mqtt.username: required when a password is given"),
    (minimal(outputs={"mqtt": {"host": "h", "spool_dir": "/s", "tls": {"ca": "x"}}}),
     "outputs.mqtt.tls.ca: unknown key"),
    (minimal(outputs={"kafka": {}}), "outputs.kafka: unknown output"),
    (minimal(outputs={}), "outputs: no output configured"),
    (minimal(http={"port": 70000}), "http.port: must be between 0 and 65535"),
    (minimal(cameras={"pool": {"source": "0", "decode_scale": 3}}),
     "cameras.pool.decode_scale: must be one of 1, 2, 4, 8"),
])
def test_config_rejects_with_key_path(raw, message):
    with pytest.raises(EdgekitError) as info:
        parse_config(raw, "serve.toml")
    assert message in str(info.value)


def test_config_reports_every_problem_at_once():
    raw = minimal(model={"dir": "/m", "threads": "x", "stride": 0}, http={"bind": 1})
    with pytest.raises(EdgekitError) as info:
        parse_config(raw, "serve.toml")
    text = str(info.value)
    assert "3 problem(s)" in text and "model.stride" in text and "http.bind" in text


def test_check_config_cli(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[model]\ndir = 3\n")
    result = CliRunner().invoke(main, ["serve", "--config", str(bad), "--check-config"])
    assert result.exit_code == 1
    assert "model.dir: must be a non-empty string" in result.output
    assert "Traceback" not in result.output
    broken = tmp_path / "broken.toml"
    broken.write_text("[model\n")
    result = CliRunner().invoke(main, ["serve", "--config", str(broken), "--check-config"])
    assert result.exit_code == 1 and "is not valid TOML" in result.output
    result = CliRunner().invoke(main, ["serve", "--config", str(tmp_path / "none.toml")])
    assert result.exit_code == 1 and "does not exist" in result.output


def test_model_target_from_the_repos_devices_toml(tmp_path):
    from edge.devices import load_devices
    from edge.serve.config import resolve_target

    devices_file = os.path.join(ROOT, "devices.toml")
    cpu = load_devices(devices_file)["cpu"]
    cfg = parse_config(minimal(model={"dir": "/models/swim", "target": "cpu",
                                      "devices_file": devices_file}))
    model = resolve_target(cfg.model)
    assert model["backend"].key == "litert" and model["backend"].identity() == \
        cpu.make_backend().identity()
    assert model["threads"] == (cpu.threads or 1)
    plain = resolve_target(parse_config(minimal(model={"dir": "/m", "device": "edgetpu:usb"})).model)
    assert plain["backend"].describe() == "edgetpu device=usb"
    with pytest.raises(EdgekitError, match="model.device: unknown device 'tpu'"):
        resolve_target(parse_config(minimal(model={"dir": "/m", "device": "tpu"})).model)

    with pytest.raises(EdgekitError) as info:
        resolve_target(parse_config(minimal(model={"dir": "/m", "target": "nope"})).model)
    text = str(info.value)
    assert text.startswith("model.target: cannot use target 'nope'") and "cpu" in text
    with pytest.raises(EdgekitError, match="model.target: give a target or device"):
        parse_config(minimal(model={"dir": "/m", "target": "cpu", "threads": 2}))

    bad = tmp_path / "bad-target.toml"
    bad.write_text('[model]\ndir = "m"\ntarget = "nope"\ndevices_file = %s\n[cameras.pool]\n'
                   'source = "0"\n[outputs.jsonl]\npath = "e.jsonl"\n' % json.dumps(devices_file))
    result = CliRunner().invoke(main, ["serve", "--config", str(bad), "--check-config"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "model.devices_file: cannot use target 'nope'" in result.output


# -- spool ---------------------------------------------------------------------------------------

def drain(spool):
    out = []
    while True:
        record = spool.next()
        if record is None:
            return out
        out.append(record)


def test_spool_replays_unacknowledged_in_order_after_reopen(tmp_path):
    spool = Spool(tmp_path / "s", segment_bytes=200)  # several segments
    for i in range(20):
        assert spool.append("t/%d" % i, "payload %d" % i) == i + 1
    records = drain(spool)
    assert [r[0] for r in records] == list(range(1, 21))
    for n in (1, 2, 4, 3, 5):  # out-of-order PUBACKs: the position moves when contiguous
        spool.ack(n)
    assert spool.acked == 5 and spool.depth == 15
    spool.checkpoint()
    spool.close()

    again = Spool(tmp_path / "s", segment_bytes=200)
    assert again.depth == 15
    assert [(n, t) for n, t, _ in drain(again)] == [(n, "t/%d" % (n - 1)) for n in range(6, 21)]
    assert again.append("t/new", "x") == 21  # numbering continues
    for n in range(6, 22):
        again.ack(n)
    again.checkpoint()
    segments = [f for f in os.listdir(tmp_path / "s") if f.startswith("seg-")]
    assert len(segments) == 1  # acknowledged segments are deleted
    assert again.depth == 0
    again.close()


def test_spool_cuts_a_torn_last_line(tmp_path):
    spool = Spool(tmp_path / "s")
    spool.append("a", "1")
    spool.append("b", "2")
    spool.close()
    segment = [f for f in os.listdir(tmp_path / "s") if f.startswith("seg-")][0]
    with open(tmp_path / "s" / segment, "ab") as handle:
        handle.write(b'{"n":3,"t":"c","p":')  # a crash mid-write
    again = Spool(tmp_path / "s")
    assert [r[:2] for r in drain(again)] == [(1, "a"), (2, "b")]
    assert again.append("c", "3") == 3
    assert drain(again)[0][:2] == (3, "c")


def test_spool_over_its_size_drops_the_oldest_and_counts(tmp_path):
    spool = Spool(tmp_path / "s", max_bytes=4096, segment_bytes=1024)
    for i in range(200):
        spool.append("t", "x" * 40)
    assert spool.dropped > 0 and spool.bytes <= 4096 + 1024
    records = drain(spool)
    assert records[-1][0] == 200
    assert [r[0] for r in records] == list(range(records[0][0], 201))
    assert spool.depth == len(records)


def test_spool_appends_and_reads_while_a_checkpoint_is_in_fsync(tmp_path, monkeypatch):
    """The fsync runs outside the spool's lock: a slow disk never blocks the worker's append nor
    the publisher's read (it used to hold the lock through the fsync)."""
    spool = Spool(tmp_path / "s", segment_bytes=256)
    for i in range(10):  # several segments, some closed (their fsync is the checkpoint's too)
        spool.append("t", "x" * 40)
    for n in range(1, 6):
        spool.ack(n)
    in_fsync, release = threading.Event(), threading.Event()
    real_fsync = os.fsync

    def slow_fsync(fd):
        in_fsync.set()
        assert release.wait(30)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", slow_fsync)
    checkpoint = threading.Thread(target=spool.checkpoint)
    checkpoint.start()
    try:
        assert in_fsync.wait(10)
        done = []
        other = threading.Thread(target=lambda: done.append((spool.append("t", "y"),
                                                             spool.next())))
        other.start()
        other.join(10)
        assert not other.is_alive(), "append/next waited for the checkpoint's fsync"
        assert done[0][0] == 11 and done[0][1][0] == 1
    finally:
        release.set()
        checkpoint.join(10)
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert not checkpoint.is_alive()
    with open(tmp_path / "s" / "acked") as handle:
        assert int(handle.read()) == 5
    spool.close()
    again = Spool(tmp_path / "s")
    assert [r[0] for r in drain(again)] == list(range(6, 12))


def test_spool_refuses_an_unwritable_directory(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(EdgekitError, match="spool_dir"):
        Spool(blocker / "spool")


# -- jsonl ---------------------------------------------------------------------------------------

def test_jsonl_rotates_and_keeps_every_line(tmp_path):
    sink = JsonlSink(tmp_path / "events.jsonl", max_bytes=1024, keep=3)
    for i in range(150):  # ~5 KB: more rotations than kept files
        sink.write({"seq": i + 1, "pad": "x" * 30})
    sink.close()
    files = sorted(os.listdir(tmp_path))
    assert files == ["events.jsonl", "events.jsonl.1", "events.jsonl.2", "events.jsonl.3"]
    seqs = []
    for name in reversed(files[1:]):
        with open(tmp_path / name) as handle:
            seqs += [json.loads(line)["seq"] for line in handle]
    with open(tmp_path / "events.jsonl") as handle:
        seqs += [json.loads(line)["seq"] for line in handle]
    assert seqs == list(range(seqs[0], 151)) and seqs[0] > 1  # contiguous; only the oldest rotated away
    assert all(os.path.getsize(tmp_path / f) <= 1024 for f in files)


# -- frame queue and capture ---------------------------------------------------------------------

def test_frame_queue_drops_the_oldest_and_reuses_buffers():
    queue = FrameQueue(3)
    frames = make_frames(10)
    for i in range(5):
        queue.put(frames[i], i, i / 15.0, 0.0)
    assert queue.dropped == 2 and queue.depth() == 3
    ids = set()
    got = []
    while True:
        slot = queue.get(0.01)
        if slot is None:
            break
        ids.add(id(slot.frame))
        got.append(slot.index)
        assert np.array_equal(slot.frame, frames[slot.index])
    assert got == [2, 3, 4]
    for i in range(5, 10):  # the steady state reuses the pool
        queue.put(frames[i], i, 0.0, 0.0)
        slot = queue.get(0.01)
        ids.add(id(slot.frame))
    assert len(ids) <= 4  # capacity + 1 buffers, never more


def camera(source, **over):
    cfg = {"source": str(source), "fps": 0.0, "stall_timeout_s": 5.0, "reconnect_min_s": 0.02,
           "reconnect_max_s": 0.1}
    cfg.update(over)
    return cfg


def wait_until(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return False


def test_frame_queue_put_with_wait_blocks_instead_of_dropping():
    queue = FrameQueue(2)
    frames = make_frames(3)
    stop = threading.Event()
    queue.put(frames[0], 0, 0.0, 0.0, stop)
    queue.put(frames[1], 1, 0.0, 0.0, stop)
    third = threading.Thread(target=queue.put, args=(frames[2], 2, 0.0, 0.0, stop))
    third.start()
    third.join(0.3)
    assert third.is_alive() and queue.dropped == 0  # waiting for room, nothing dropped
    assert queue.get(1.0).index == 0
    third.join(10)
    assert not third.is_alive()
    assert [queue.get(1.0).index, queue.get(1.0).index] == [1, 2] and queue.dropped == 0
    queue.put(frames[0], 3, 0.0, 0.0, stop)
    queue.put(frames[1], 4, 0.0, 0.0, stop)
    stop.set()  # stopping: a full queue then drops the oldest rather than wait forever
    queue.put(frames[2], 5, 0.0, 0.0, stop)
    assert queue.dropped == 1


def test_url_sources_fail_their_open_and_read_within_the_timeouts():
    """A camera that accepts and says nothing, and one that froze mid-stream: the open, resp.
    the read, fails (bounded by the timeouts) instead of blocking for OpenCV's 30 s."""
    from edge.sources import FrameSource
    from tests.fixtures.stall_http import StallingCamera

    dead, frozen = StallingCamera(), StallingCamera(frames=5)
    outcome = {}

    def attempt():
        try:
            FrameSource(dead.url, open_timeout_s=0.5, read_timeout_s=0.5)
        except EdgekitError as exc:
            outcome["open"] = str(exc)
        source = FrameSource(frozen.url, open_timeout_s=2.0, read_timeout_s=0.5)
        outcome["frames"] = [index for index, _, frame in source]
        outcome["size"] = (source.height, source.width)
        outcome["reason"] = source.stats.reason

    try:
        worker = threading.Thread(target=attempt, daemon=True)
        worker.start()
        worker.join(60)
        assert not worker.is_alive(), "a source blocked: %s" % outcome
    finally:
        dead.close()
        frozen.close()
    assert "cannot open video source %s" % dead.url in outcome["open"]
    assert "open_timeout_s = 0.5" in outcome["open"]
    assert outcome["frames"] == [0, 1, 2, 3, 4] and outcome["size"] == (48, 64)
    assert "stalled after 5 frames" in outcome["reason"]
    assert "read_timeout_s = 0.5" in outcome["reason"]
    with pytest.raises(EdgekitError, match="read_timeout_s must be > 0"):
        FrameSource("rtsp://127.0.0.1:1/x", read_timeout_s=0)


def test_capture_reconnects_after_the_stream_ends_with_monotonic_indices(tmp_path):
    video = write_avi(tmp_path / "short.avi", make_frames(6))
    queue = FrameQueue(64)
    capture = CaptureThread("cam", camera(video), queue)
    seen = []
    capture.start()
    try:
        assert wait_until(lambda: capture.reconnects >= 2 and capture.frames_in >= 12)
        while True:
            slot = queue.get(0.01)
            if slot is None:
                break
            seen.append(slot.index)
    finally:
        capture.stop()
        capture.join(10)
    assert not capture.is_alive() and capture.status == "stopped"
    assert seen == sorted(seen) and seen[:6] == list(range(6))
    assert seen[6] >= 6 + 1000  # a reconnect leaves a gap so no window spans two connections
    assert "source ended" in capture.last_error


def test_a_file_played_to_its_end_plays_again_without_the_backoff(tmp_path):
    """A file that ended at its last frame is opened again at once (the backoff is for sources
    that fail); one that breaks off mid-way still waits for it."""
    video = write_avi(tmp_path / "short.avi", make_frames(6))
    queue = FrameQueue(64)
    capture = CaptureThread("cam", camera(video, reconnect_min_s=600, reconnect_max_s=600),
                            queue)
    capture.start()
    try:
        assert wait_until(lambda: capture.reconnects >= 3 and capture.frames_in >= 24)
    finally:
        capture.stop()
        capture.join(10)
    assert not capture.is_alive() and "end of stream" in capture.last_error
    seen = []
    while True:
        slot = queue.get(0.01)
        if slot is None:
            break
        seen.append(slot.index)
    gaps = [b - a for a, b in zip(seen, seen[1:])]
    assert seen == sorted(seen) and set(gaps) - {1} and min(set(gaps) - {1}) >= 1000
    # still a gap between two plays: no window spans the end and the start of the file

    data = open(write_avi(tmp_path / "full.avi", make_frames(20)), "rb").read()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[:len(data) // 2])
    capture = CaptureThread("cam", camera(cut, reconnect_min_s=600, reconnect_max_s=600),
                            FrameQueue(64))
    capture.start()
    try:
        assert wait_until(lambda: capture.reconnects >= 1 and capture.status == "reconnecting")
        time.sleep(0.3)
        assert capture.reconnects == 1  # waiting out the backoff
        assert "broke off" in capture.last_error
    finally:
        capture.stop()
        capture.join(10)
    assert not capture.is_alive()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread niceness is Linux's")
def test_an_unpaced_file_is_read_at_the_lowest_cpu_priority(tmp_path):
    """Unpaced (fps = 0), a file is pulled as fast as inference takes frames: its reading thread
    runs at nice 19 so decoding happens while inference waits; a paced one keeps its priority
    (a live camera or a paced file must keep up with its clock)."""
    video = write_avi(tmp_path / "v.avi", make_frames(6))
    seen = {}

    def opener_for(key):
        def opener(path, **options):
            from edge.sources import FrameSource
            seen[key] = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
            return FrameSource(path, **options)
        return opener

    base = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    for key, fps in (("unpaced", 0.0), ("paced", 30.0)):
        capture = CaptureThread("cam", camera(video, fps=fps), FrameQueue(64),
                                opener=opener_for(key))
        capture.start()
        try:
            assert wait_until(lambda: capture.frames_in >= 7)  # the second play has opened
        finally:
            capture.stop()
            capture.join(10)
        assert capture.yielding == (fps == 0.0)
    assert seen["unpaced"] == max(base, PULL_NICE)  # from the second play on
    assert seen["paced"] == base
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == base  # only that thread


def test_capture_of_a_missing_source_keeps_retrying_with_backoff(tmp_path):
    capture = CaptureThread("cam", camera(tmp_path / "absent.avi"), FrameQueue(2))
    capture.start()
    try:
        assert wait_until(lambda: capture.reconnects >= 3)
        assert capture.status in ("unavailable", "reconnecting") and capture.is_alive()
        assert "does not exist" in capture.last_error
    finally:
        capture.stop()
        capture.join(10)
    assert not capture.is_alive()


def test_watchdog_restarts_a_stalled_stream(tmp_path):
    """A source whose read blocks (as a dead RTSP camera's does): the watchdog abandons it and
    reconnects; the stuck reader exits by itself once its read returns."""
    from edge.sources import FrameSource

    video = str(write_avi(tmp_path / "v.avi", make_frames(8)))
    release = threading.Event()
    opened = []

    class StallingAfterThree(object):  # wraps the real source; only the blocking is added
        def __init__(self, path, **options):
            self.inner = FrameSource(path, **options)
            self.kind, self.width, self.height = "url", self.inner.width, self.inner.height
            self.stats = self.inner.stats
            opened.append(self)

        def __iter__(self):
            for index, timestamp, frame in self.inner:
                if index == 3 and len(opened) == 1:
                    release.wait(30)
                yield index, timestamp, frame

        def close(self):
            self.inner.close()

    clock = [0.0]
    capture = CaptureThread("cam", camera(video, stall_timeout_s=1.0), FrameQueue(64),
                            opener=StallingAfterThree, clock=lambda: clock[0])
    capture.start()
    try:
        assert wait_until(lambda: capture.frames_in == 3)
        assert not capture.check_stall()  # no time has passed
        clock[0] = 5.0
        assert capture.check_stall()
        assert capture.stalls == 1
        assert wait_until(lambda: len(opened) >= 2 and capture.frames_in > 3)
        assert capture.reconnects >= 1
    finally:
        release.set()
        capture.stop()
        capture.join(10)


# -- events (the swimmer's tasks; the generic rules are in test_serve_tasks.py) -----------------

def window(i, action, score=0.9, identity="ana"):
    values = np.full(4, (1.0 - score) / 3, np.float32)
    values[ACTIONS.index(action)] = score
    ident = np.array([0.7, 0.1, 0.1, 0.1], np.float32)
    tasks = {"action": TaskOutput("action", "classification", values, action, score,
                                  labels=ACTIONS),
             "identity": TaskOutput("identity", "classification", ident, identity, 0.7,
                                    labels=IDENTITIES)}
    return WindowResult(0, (0, 0, 32, 32), i, i + 7, i / 15.0, (i + 7) / 15.0, tasks)


IDENTITIES = ["ana", "ben", "cleo", "dev"]


def swim_manifest():
    from edge.manifest import InputSpec, Manifest, TaskSpec

    tasks = [TaskSpec("action", "classification", ACTIONS, "action"),
             TaskSpec("identity", "classification", IDENTITIES, "identity"),
             TaskSpec("identity_embedding", "embedding", [], "identity_embedding")]
    return Manifest("swim", "tiny", "ptq", "", InputSpec(32, 32), 8, 1, [4, 4, 16], tasks, {})


def region(events=None, rules=(), clock=None):
    """A region's events for a swimmer model, from an [events] table as a config gives it."""
    from edge.serve.model_check import event_policies

    raw = minimal(events=dict({"debounce_windows": 2, "min_score": 0.5}, **(events or {})))
    policies = event_policies(parse_config(raw).events, swim_manifest(), False)
    return RegionEvents("pool", "lane1", EventFactory("run1"), policies, rules,
                        clock=clock or time.monotonic)


def run(events, sequence):
    out = []
    for i, (label, score) in enumerate(sequence):
        events.on_window(window(i, label, score), 1000.0 + i, out)
    return out


def test_action_events_are_debounced():
    events = region({"identity": False})  # the old spelling still works
    out = run(events, [("freestyle", 0.9), ("freestyle", 0.9), ("drowning", 0.9),
                       ("freestyle", 0.9), ("drowning", 0.9), ("drowning", 0.9),
                       ("drowning", 0.4), ("safe", 0.3)])
    assert [(e["type"], e["label"], e["previous"]) for e in out] == [
        ("action", "freestyle", None), ("action", "drowning", "freestyle")]
    event = out[1]
    assert event["frames"] == [5, 12] and event["camera"] == "pool" and event["id"] == "run1-2"
    assert event["scores"]["drowning"] == pytest.approx(0.9)
    assert event["time"].endswith("Z") and event["frame_time"] == 1005.0
    assert "source" not in event  # action has no embedding


def test_identity_events_follow_the_classifier():
    events = region({"tasks": {"action": {"enabled": False}}, "debounce_windows": 1})
    out = []
    events.on_window(window(0, "safe", identity="ana"), 0.0, out)
    events.on_window(window(1, "safe", identity="ana"), 0.0, out)
    events.on_window(window(2, "safe", identity="ben"), 0.0, out)
    assert [(e["type"], e["label"], e["source"]) for e in out] == [
        ("identity", "ana", "classifier"), ("identity", "ben", "classifier")]


def test_alert_needs_consecutive_windows_and_respects_cooldown():
    rule = AlertRule({"name": "drown", "task": "action", "label": "drowning", "min_score": 0.8,
                      "consecutive": 3, "cooldown_s": 60.0}, "classification")
    now = [0.0]
    events = region({"action": False, "identity": False}, [rule], clock=lambda: now[0])
    seq = [("drowning", 0.9), ("drowning", 0.9), ("drowning", 0.7),  # broken by a low score
           ("drowning", 0.9), ("drowning", 0.85), ("drowning", 0.95),  # fires here (3rd)
           ("drowning", 0.9)]  # cooldown: quiet
    out = run(events, seq)
    assert [(e["type"], e["rule"], e["windows"], e["frames"][0]) for e in out] == [
        ("alert", "drown", 3, 5)]
    now[0] = 61.0
    out = run(events, [("drowning", 0.9)])
    assert len(out) == 1 and out[0]["windows"] == 5
