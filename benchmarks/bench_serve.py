"""The daemon's figures: sustained fps per camera on one core, event latency, memory over a long run.

Runs ``edgekit serve`` as a subprocess pinned to one CPU core (``threads = 1``) against a local
mosquitto (started here, loopback only) with a looping VGA video file as the camera, and prints:

1. throughput: the file unpaced (``fps = 0``: decoded as fast as inference takes the frames,
   none dropped, the reading thread at nice 19 so it decodes while inference waits; the file
   plays again at once when it ends): frames processed per second once warm, decoding included.
   Model-bound rate = 1000 / (preprocess + frame model + step + head ms per frame), each stage
   the mean over the timed frames (from the daemon's running totals, ``inference_total_ms``), the
   head counted once per window; then the CPU each daemon thread used per frame over the same
   frames (the daemon names its OS threads). Measured (README, "The daemon on one core"): int8
   EfficientNet-B3 on one core, 74.5 -> 135.8 frames/s, then 139.4 frames/s = 70.2 % of the
   model-bound rate with the command below (``--frames 300 --latency-events 300``); what is
   left is the VGA decode (capture thread 1.1-1.3 ms per frame) and an MQTT message per frame
   (0.35-0.5 ms) on the same core, the worker 0.2-0.3 ms over its model stages; on the step
   model 146.5 frames/s = 67.9 % of 215.9, the decode alone capping it at 78.7 % (README,
   "Where the rest goes"; ``benchmarks/bench_decode.py`` splits the capture's part); with
   ``--decode-scale 4`` (the cameras' ``decode_scale``: the VGA MJPEG decoded at 160x120) and
   ``--frames 1200``, 128.8 -> 159.0 frames/s, 68.5 % -> 76.0 % (README, "Decoding at the
   model's scale");
2. latency: the source paced at ``--pace`` (default 0.7) of that rate, so there is no backlog,
   one alert per window (rules with ``consecutive = 1`` and ``cooldown_s = 0`` on every action
   label): time from the wall-clock capture of the frame that completed the window (the event's
   ``frame_time``) to the event's arrival at an MQTT subscriber: median and p99, then where it
   goes, from the daemon's ``/stats`` (``latency_ms``): frame queue wait, frame -> event handed
   to the sinks, spool write -> paho publish, spool write -> PUBACK, and the spool checkpoint
   (fsync) durations, which run on their own thread;
3. memory (``--long-frames N``): a fresh unpaced daemon's RSS (VmRSS, and the peak VmHWM)
   printed as it goes at every tenth of N frames; flat means the last samples are no higher than
   the early ones;
4. memory per camera count (``--cameras 1,4``): a daemon with N cameras on the same model
   directory (the same video file each), its RSS once every camera has made a window: the
   cameras share one model session, so N cameras should cost N rings and capture buffers, not N
   copies of the models.

The subscriber (this process) should run on another core than the daemon (``--core``), e.g.
``taskset -c 1 python benchmarks/bench_serve.py --core 0 ...``.

    python benchmarks/bench_serve.py --model /path/to/efficientnet_b3/int8 --frames 600 \
        --latency-events 300 --long-frames 100000
    taskset -c 1 python benchmarks/bench_serve.py --model DIR --frames 300 --latency-events 300 \
        --core 0
"""

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from edge.manifest import Manifest  # noqa: E402
from tests.fixtures.edge import make_frames, write_avi  # noqa: E402
from tests.fixtures.mosquitto import Broker, Collector, free_port  # noqa: E402


def camera_names(count):
    return ["cam"] + ["cam%d" % i for i in range(2, count + 1)]


def write_config(path, model, video, fps, mqtt_port, http_port, spool, labels, regions,
                 cameras=1, decode_scale=1):
    lines = ['[model]', 'dir = %s' % json.dumps(model), 'threads = 1',
             '[events]', 'debounce_windows = 1']
    for label in labels:
        lines += ['[[alerts]]', 'name = "every-%s"' % label, 'task = "action"',
                  'label = %s' % json.dumps(label),
                  'min_score = 0.0', 'consecutive = 1', 'cooldown_s = 0']
    for name in camera_names(cameras):
        lines += ['[cameras.%s]' % name, 'source = %s' % json.dumps(video), 'fps = %s' % fps,
                  'queue = 8', 'decode_scale = %d' % decode_scale]
        if regions > 1:
            lines.append('[cameras.%s.regions]' % name)
            width = 640 // regions
            lines += ['r%d = [%d, 0, %d, 480]' % (i, i * width, width) for i in range(regions)]
    lines += ['[outputs.mqtt]', 'host = "127.0.0.1"', 'port = %d' % mqtt_port,
              'topic_prefix = "bench"', 'spool_dir = %s' % json.dumps(spool),
              '[http]', 'port = %d' % http_port, '[daemon]', 'log_level = "warning"']
    with open(path, "w") as handle:
        handle.write("\n".join(lines) + "\n")


class Daemon(object):
    def __init__(self, config, core, log_path):
        self.log = open(log_path, "w")

        def pin():
            os.sched_setaffinity(0, {core})

        self.proc = subprocess.Popen([sys.executable, "-m", "edge.cli", "serve", "--config",
                                      config], cwd=ROOT, stdout=self.log, stderr=self.log,
                                     preexec_fn=pin)

    def stats(self, port):
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d/stats" % port, timeout=5) as r:
                return json.loads(r.read())
        except OSError:
            return None

    def rss_mb(self, key="VmRSS:"):
        with open("/proc/%d/status" % self.proc.pid) as handle:
            for line in handle:
                if line.startswith(key):
                    return int(line.split()[1]) / 1024.0
        return float("nan")

    def wait(self, port, predicate, timeout, camera="cam"):
        """The camera's /stats once ``predicate`` holds for it (camera=None: for all of them)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit("daemon exited; see its log")
            stats = self.stats(port)
            if stats is not None:
                cams = stats["cameras"]
                if camera is None and all(predicate(c) for c in cams.values()):
                    return cams
                if camera is not None and predicate(cams[camera]):
                    return cams[camera]
            time.sleep(0.2)
        raise SystemExit("timed out after %.0f s" % timeout)

    def thread_cpu_s(self):
        """{OS thread name: CPU seconds so far} (the daemon names its threads; paho's thread
        and the main thread stay ``python``, summed under that name)."""
        tick = float(os.sysconf("SC_CLK_TCK"))
        result = {}
        task = "/proc/%d/task" % self.proc.pid
        for tid in os.listdir(task):
            try:
                with open(os.path.join(task, tid, "comm")) as handle:
                    name = handle.read().strip()
                with open(os.path.join(task, tid, "stat")) as handle:
                    fields = handle.read().rsplit(")", 1)[1].split()
            except OSError:  # the thread ended meanwhile
                continue
            result[name] = result.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / tick
        return result

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = "killed"
        self.log.close()
        return code


def throughput_phase(args, work, video, broker, labels):
    """Phase 1: frames/s processed per camera, the source unpaced."""
    http = free_port()
    config = os.path.join(work, "throughput.toml")
    write_config(config, args.model, video, 0, broker.port, http,
                 os.path.join(work, "spool1"), labels, args.regions,
                 decode_scale=args.decode_scale)
    daemon = Daemon(config, args.core, os.path.join(work, "throughput.log"))
    first = daemon.wait(http, lambda c: c["windows"] >= 1, args.timeout)
    t0 = time.monotonic()
    cpu0 = daemon.thread_cpu_s()
    last = daemon.wait(http, lambda c: c["frames_processed"] >= first["frames_processed"]
                       + args.frames, args.timeout)
    cpu1 = daemon.thread_cpu_s()
    span = time.monotonic() - t0
    fps = (last["frames_processed"] - first["frames_processed"]) / span
    frames = last["frames_processed"] - first["frames_processed"]
    windows = last["windows"] - first["windows"]
    stage_ms = {k: (last["inference_total_ms"][k] - first["inference_total_ms"][k]) / windows
                for k in last["inference_total_ms"]}
    # every frame is preprocessed and runs the frame model; the head runs once per window (none
    # while the ring warms up again after the looping file restarts)
    bound = 1000.0 / (stage_ms["preprocess"] + stage_ms["frame_model"] + stage_ms["step"]
                      + stage_ms["head"] * windows / frames)
    print("throughput: %.1f frames/s processed per camera (%d frames in %.1f s); read %d, "
          "dropped %d by the queue" % (fps, last["frames_processed"] - first["frames_processed"],
                                       span, last["frames_in"], last["dropped"]))
    print("  model-bound rate %.1f frames/s = 1000 / (preprocess + frame model + step + head "
          "x %d/%d windows per frame; ms means over the same windows: %s): %.1f %% of it (target >= "
          "80 %%); moving averages at the end: %s"
          % (bound, windows, frames, ", ".join("%s %.3f" % item for item in stage_ms.items()),
             100.0 * fps / bound, last["inference_ms"]), flush=True)
    print_thread_cpu(cpu0, cpu1, frames, span)
    print("  daemon exit: %s" % daemon.stop())
    return fps


def print_thread_cpu(before, after, frames, span):
    """Where the core's time went over the timed frames, per daemon thread (ms per frame)."""
    used = {name: after[name] - before.get(name, 0.0) for name in after}
    total = sum(used.values())
    print("  CPU per frame by thread (ms; %.0f %% of the wall time on the core): %s; total %.3f"
          % (100.0 * total / span, ", ".join(
              "%s %.3f" % (name, 1e3 * sec / frames)
              for name, sec in sorted(used.items(), key=lambda item: -item[1]) if sec > 0),
             1e3 * total / frames))


def latency_phase(args, work, video, broker, labels, fps):
    """Phase 2: window-to-MQTT latency, the source paced below the sustained rate."""
    paced = max(1.0, round(min(15.0, args.pace * fps), 1))
    http = free_port()
    config = os.path.join(work, "latency.toml")
    write_config(config, args.model, video, paced, broker.port, http,
                 os.path.join(work, "spool2"), labels, args.regions,
                 decode_scale=args.decode_scale)
    collector = Collector(broker.port, "bench/events/#")
    arrivals = []
    original = collector.client.on_message

    def on_message(client, userdata, message):
        arrivals.append((time.time(), json.loads(message.payload)))
        original(client, userdata, message)

    collector.client.on_message = on_message
    daemon = Daemon(config, args.core, os.path.join(work, "latency.log"))
    collector.wait_for(lambda c: len(arrivals) >= args.latency_events + 10, args.timeout)
    latencies = sorted((t - e["frame_time"]) * 1000.0 for t, e in arrivals[10:])
    p99 = latencies[min(len(latencies) - 1, int(round(0.99 * (len(latencies) - 1))))]
    print("latency (frame completing the window -> event at the MQTT subscriber, source "
          "paced at %.1f fps, %d events): median %.1f ms, p99 %.1f ms, max %.1f ms"
          % (paced, len(latencies), statistics.median(latencies), p99, latencies[-1]), flush=True)

    stats = daemon.stats(http)
    if stats is not None:
        parts = dict(stats["cameras"]["cam"].get("latency_ms", {}))
        parts.update(stats["sinks"]["mqtt"].get("latency_ms", {}))
        print("  where it goes (ms, daemon's last 1024 samples):")
        for key in ("queue_wait", "frame_to_emit", "write_to_publish", "write_to_ack",
                    "checkpoint"):
            part = parts.get(key, {})
            if part.get("n"):
                print("    %-17s median %8.1f  p99 %8.1f  max %8.1f  (n=%d)"
                      % (key, part["median"], part["p99"], part["max"], part["n"]))
        cam = stats["cameras"]["cam"]
        print("  frames read %d, dropped by the queue %d"
              % (cam["frames_in"], cam["dropped"]))
    print("  daemon exit: %s" % daemon.stop())
    collector.close()


def long_memory_phase(args, work, video, broker, labels):
    """Phase 3: RSS over a long unpaced run."""
    http = free_port()
    config = os.path.join(work, "memory.toml")
    write_config(config, args.model, video, 0, broker.port, http,
                 os.path.join(work, "spool3"), labels, args.regions,
                 decode_scale=args.decode_scale)
    daemon = Daemon(config, args.core, os.path.join(work, "memory.log"))
    start = daemon.wait(http, lambda c: c["windows"] >= 1, args.timeout)
    base = start["frames_processed"]
    samples = []
    step = max(1, args.long_frames // 10)
    began = time.monotonic()
    print("memory over %d frames: start (after the first window) RSS %.1f MB"
          % (args.long_frames, daemon.rss_mb()), flush=True)
    for k in range(1, 11):
        cam = daemon.wait(http, lambda c, k=k: c["frames_processed"] >= base + k * step,
                          args.timeout)
        samples.append((cam["frames_processed"] - base, daemon.rss_mb()))
        print("  %7d frames  %6.0f s  RSS %.1f MB  peak %.1f MB  dropped %d  "
              "reconnects %d" % (samples[-1][0], time.monotonic() - began,
                                 samples[-1][1], daemon.rss_mb("VmHWM:"),
                                 cam["dropped"], cam["reconnects"]), flush=True)
    print("  RSS first tenth %.1f MB, end %.1f MB (growth %+.1f MB), peak %.1f MB"
          % (samples[0][1], samples[-1][1], samples[-1][1] - samples[0][1],
             daemon.rss_mb("VmHWM:")))
    print("  daemon exit: %s" % daemon.stop())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="model directory (edgekit quantize)")
    parser.add_argument("--frames", type=int, default=600,
                        help="frames timed for the throughput figure")
    parser.add_argument("--latency-events", type=int, default=200)
    parser.add_argument("--pace", type=float, default=0.7,
                        help="latency run: source fps as a fraction of the measured throughput")
    parser.add_argument("--long-frames", type=int, default=0,
                        help="frames for the memory check (0: skip), e.g. 100000")
    parser.add_argument("--regions", type=int, default=1, help="regions per camera")
    parser.add_argument("--decode-scale", type=int, default=1, choices=(1, 2, 4, 8),
                        help="the cameras' decode_scale (decode at 1/N: edge.reduced_decode)")
    parser.add_argument("--cameras", default="",
                        help="memory per camera count, e.g. 1,4 (empty: skip)")
    parser.add_argument("--core", type=int, default=0, help="the CPU core to pin to")
    parser.add_argument("--timeout", type=float, default=7200.0, help="per phase, seconds")
    args = parser.parse_args(argv)

    manifest = Manifest.load(args.model)
    labels = [t for t in manifest.tasks if t.name == "action"][0].labels
    work = tempfile.mkdtemp(prefix="bench-serve-")
    video = str(write_avi(os.path.join(work, "cam.avi"), make_frames(150, size=(480, 640)),
                          fps=15))
    broker = Broker(os.path.join(work, "broker")).start()
    print("model %s (%s, T=%d, %dx%d), %d region(s), 1 core (#%d), threads=1, decode_scale %d"
          % (args.model, manifest.backbone, manifest.clip_length, manifest.input.width,
             manifest.input.height, args.regions, args.core, args.decode_scale))
    try:
        if args.cameras:
            memory_per_cameras(args, work, video, broker, labels)
            if not args.frames:
                return
        fps = throughput_phase(args, work, video, broker, labels)
        latency_phase(args, work, video, broker, labels, fps)
        if args.long_frames:
            long_memory_phase(args, work, video, broker, labels)
    finally:
        broker.stop()


def memory_per_cameras(args, work, video, broker, labels):
    """Phase 4: RSS of a daemon with N cameras on one model, once each camera made a window."""
    rows = []
    for count in [int(n) for n in args.cameras.split(",") if n.strip()]:
        http = free_port()
        config = os.path.join(work, "cameras%d.toml" % count)
        write_config(config, args.model, video, 0, broker.port, http,
                     os.path.join(work, "spool-cams%d" % count), labels, args.regions,
                     count, decode_scale=args.decode_scale)
        daemon = Daemon(config, args.core, os.path.join(work, "cameras%d.log" % count))
        daemon.wait(http, lambda c: c["windows"] >= 1, args.timeout, camera=None)
        rows.append((count, daemon.rss_mb(), daemon.rss_mb("VmHWM:")))
        daemon.stop()
        print("memory with %d camera(s) on one model: RSS %.1f MB, peak %.1f MB" % rows[-1],
              flush=True)
    if len(rows) > 1:
        (n0, rss0, _), (n1, rss1, _) = rows[0], rows[-1]
        print("  %d -> %d cameras: +%.1f MB (%.1f MB per added camera)"
              % (n0, n1, rss1 - rss0, (rss1 - rss0) / (n1 - n0)))


if __name__ == "__main__":
    main()
