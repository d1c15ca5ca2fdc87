"""Capture: one thread per camera, a bounded frame queue, reconnects and a stall watchdog.

Why a thread per camera: decoding must keep pace with the camera whatever inference does. When
inference falls behind, the *oldest* queued frame is dropped (and counted), because a late
decision about the present is worth more than a timely one about the past. Except for a video
file read unpaced (``fps = 0``): a file is not live, so its capture waits for room in the queue
instead (no frame dropped); decoding frames only to throw them away would also take the CPU from
inference on a one-core camera.

Why a pool of frame buffers: the source decodes into one reused array; each queued frame is
copied into one of ``queue + 1`` buffers allocated at the first frame (the extra one is the frame
the worker holds), so the steady state allocates nothing per frame.

A camera never takes the daemon down: when its stream ends, breaks or cannot be opened, the
thread waits (exponential backoff from ``reconnect_min_s`` to ``reconnect_max_s``, reset after a
frame arrives), reconnects and counts it. The watchdog (:meth:`CaptureThread.check_stall`,
called by the daemon's supervisor) catches the case a read never returns: no frame for
``stall_timeout_s`` releases the capture, which makes the blocked read fail and the loop
reconnect. It is the backstop: RTSP/HTTP sources get ``open_timeout_s``/``read_timeout_s``, so a
camera that goes silent normally makes the read itself fail and the loop reconnect.

A file that played to its last frame (``end of stream``, at least one frame read) is opened again
at once, without the backoff: nothing failed, and waiting is pure loss. Measured before this on
bench_serve.py's throughput run (a 150-frame VGA file, unpaced, EfficientNet-B3, one core): the
file ended every ~1.1 s and the camera then slept ``reconnect_min_s`` (1 s), so the core was idle
43 % of the time (/proc/stat: 435 of 1000 jiffies) and the daemon made 66-75 frames/s where its
threads' CPU time allowed ~130. A file that breaks off mid-way, cannot be opened or delivers
nothing still backs off; every replay still counts as a reconnect and leaves the index gap below.

An unpaced file (``fps = 0``) is *pulled*: its reading thread drops to nice 19 (Linux; only that
thread, see :func:`yield_cpu`), so on a one-core camera it decodes while inference waits for a
frame instead of preempting it. Measured the same way: the worker's "preprocess" figure had been
1.2-2.3 ms per frame against 0.25-0.35 ms in the runner alone, because the ~1 ms VGA decode of the
next frame (woken by the hand-off) ran inside the worker's timed preprocessing; at nice 19 it
reads 0.22-0.36 ms and the decode lands in the worker's wait for the queue. Live cameras and
paced files keep their priority: they must keep up with a clock.

Frame numbering is per camera and monotonic across reconnects (a reconnect moves it on by
``RECONNECT_GAP`` so the runner's ring sees a gap and never mixes frames of two connections).
"""

import logging
import os
import sys
import threading
import time

import numpy as np

from edge.errors import EdgekitError
from edge.serve.threadname import name_os_thread

log = logging.getLogger("edgekit.serve.capture")

RECONNECT_GAP = 1000
END_OF_FILE = "end of stream"  # edge.sources.FrameSource's stats.reason at a file's clean end


class FrameSlot(object):
    """One pooled frame: the pixels plus where and when they came from."""

    __slots__ = ("frame", "index", "timestamp", "wall_time")

    def __init__(self, frame):
        self.frame = frame
        self.index = -1
        self.timestamp = 0.0
        self.wall_time = 0.0


class FrameQueue(object):
    """Bounded FIFO of :class:`FrameSlot` over a fixed buffer pool; full -> drop the oldest."""

    def __init__(self, capacity):
        self.capacity = int(capacity)
        self._cond = threading.Condition()
        self._queued = []         # slots waiting for the worker, oldest first
        self._free = []
        self._held = None         # the slot the worker is processing
        self._shape = None
        self.dropped = 0
        self.put_count = 0
        self.closed = False

    def put(self, frame, index, timestamp, wall_time, wait=None):
        """Copy ``frame`` into a free slot (dropping the oldest queued one if none is free).

        ``wait``: a threading.Event; if given, a full queue makes this wait for room (until the
        event is set or the queue is closed) instead of dropping."""
        with self._cond:
            if wait is not None:
                while (len(self._queued) >= self.capacity and not self.closed
                       and not wait.is_set()):
                    self._cond.wait(0.1)
            if frame.shape != self._shape:  # first frame, or the stream changed size
                self._shape = frame.shape
                self._free = [FrameSlot(np.empty(frame.shape, frame.dtype))
                              for _ in range(self.capacity + 1)]
                self._queued = []
                self._held = None  # the worker's held slot is simply not recycled
            if len(self._queued) >= self.capacity or not self._free:
                slot = self._queued.pop(0)  # full: the oldest frame makes room
                self.dropped += 1
            else:
                slot = self._free.pop()
            np.copyto(slot.frame, frame)
            slot.index = index
            slot.timestamp = timestamp
            slot.wall_time = wall_time
            self._queued.append(slot)
            self.put_count += 1
            self._cond.notify_all()

    def get(self, timeout):
        """The oldest queued slot (returning the previously held one to the pool), or None."""
        with self._cond:
            self._release_locked()
            if not self._queued:
                self._cond.wait(timeout)
            if not self._queued:
                return None
            slot = self._queued.pop(0)
            self._held = slot
            self._cond.notify_all()  # a capture waiting for room (unpaced file)
            return slot

    def release(self):
        with self._cond:
            self._release_locked()

    def _release_locked(self):
        held = self._held
        if held is not None:
            self._held = None
            if held.frame.shape == self._shape:
                self._free.append(held)

    def depth(self):
        with self._cond:
            return len(self._queued)

    def close(self):
        with self._cond:
            self.closed = True
            self._cond.notify_all()


PULL_NICE = 19  # the niceness of an unpaced file's reading thread (Linux; see yield_cpu)


def yield_cpu(nice=PULL_NICE):
    """Lower the calling thread's CPU priority to ``nice``; True if it now runs at that.

    For an unpaced file's reading thread only: the file is pulled as fast as inference takes
    frames, so its decoding is best done while inference waits rather than in the middle of it.
    On Linux a thread's niceness is its own (``setpriority`` on its thread id); elsewhere it
    would renice the whole process, so nothing is done there. Raising niceness needs no
    privilege; the thread is never meant to get it back (it reads the same file until it ends).
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        tid = threading.get_native_id()
        if os.getpriority(os.PRIO_PROCESS, tid) < nice:
            os.setpriority(os.PRIO_PROCESS, tid, nice)
        return os.getpriority(os.PRIO_PROCESS, tid) >= nice
    except (OSError, AttributeError):
        return False


def open_source(source, open_timeout_s=None, read_timeout_s=None, decode_scale=1):
    """The real frame source for ``source`` (separate so the daemon could swap backends)."""
    from edge.sources import FrameSource
    return FrameSource(source, open_timeout_s=open_timeout_s, read_timeout_s=read_timeout_s,
                       decode_scale=decode_scale)


class CaptureThread(object):
    """Read ``camera['source']`` into ``queue`` until :meth:`stop`; reconnect forever.

    Not a Thread subclass: each generation (a start, or a restart by the watchdog) runs in its
    own thread, and only the newest generation may put frames."""

    def __init__(self, name, camera, queue, opener=open_source, clock=time.monotonic):
        self.camera_name = name
        self.source = camera["source"]
        self.fps = float(camera.get("fps") or 0.0)
        self.stall_timeout_s = float(camera["stall_timeout_s"])
        self.source_options = {"open_timeout_s": camera.get("open_timeout_s"),
                               "read_timeout_s": camera.get("read_timeout_s")}
        self.decode_scale = int(camera.get("decode_scale") or 1)
        if self.decode_scale > 1:
            self.source_options["decode_scale"] = self.decode_scale
        self.decode_mode = None  # how the current stream is decoded (edge.reduced_decode)
        self.backoff_min = float(camera["reconnect_min_s"])
        self.backoff_max = float(camera["reconnect_max_s"])
        self.queue = queue
        self._opener = opener
        self._clock = clock
        self._stop = threading.Event()
        self._generation = 0
        self._thread = None
        # Counters and status, read by /stats and /healthz (ints/floats: atomic enough).
        self.status = "starting"
        self.last_error = None
        self.frames_in = 0
        self.decimated = 0
        self.reconnects = 0
        self.stalls = 0
        self.connects = 0
        self.last_frame_at = None      # monotonic
        self.connected_at = None
        self.frame_size = None          # (height, width) of the current stream
        self.next_index = 0
        self.on_connect = None          # callback(size) from the worker: checks ROIs, resets
        self.yielding = False           # reading at the lowest CPU priority (unpaced file)

    # -- control ---------------------------------------------------------------------------------

    def start(self):
        self._spawn(first=True)

    def _spawn(self, first):
        self._generation += 1
        self._thread = threading.Thread(target=self.run, args=(self._generation, first),
                                        name="capture-%s-%d" % (self.camera_name,
                                                                self._generation), daemon=True)
        self._thread.start()

    def stop(self):
        self._stop.set()

    def join(self, timeout=None):
        if self._thread is not None:
            self._thread.join(timeout)

    def is_alive(self):
        return self._thread is not None and self._thread.is_alive()

    @property
    def stopping(self):
        return self._stop.is_set()

    def check_stall(self, now=None):
        """Watchdog: True (and a new reading thread started) if streaming but silent too long."""
        now = self._clock() if now is None else now
        last = self.last_frame_at if self.last_frame_at is not None else self.connected_at
        if self.status != "streaming" or last is None or self._stop.is_set():
            return False
        if now - last < self.stall_timeout_s:
            return False
        self.stalls += 1
        self.status = "stalled"
        self.last_error = "no frame for %.1f s (stall_timeout_s)" % (now - last)
        log.warning("camera %s: %s; reconnecting", self.camera_name, self.last_error)
        self._spawn(first=False)  # the stuck thread is abandoned; it exits when its read returns
        return True

    # -- the thread ------------------------------------------------------------------------------

    def _current(self, generation):
        return generation == self._generation and not self._stop.is_set()

    def run(self, generation, first=True):
        name_os_thread()
        delay = self.backoff_min
        replay = False
        while self._current(generation):
            if not first:
                self.reconnects += 1
                self.status = "reconnecting"
                if not replay:
                    log.info("camera %s: reconnecting in %.2f s (%s)", self.camera_name, delay,
                             self.last_error)
                    if self._stop.wait(delay) or not self._current(generation):
                        break
                    delay = min(self.backoff_max, delay * 2)
            first = False
            got, replay = self._stream_once(generation)
            if got:
                delay = self.backoff_min  # it worked for a while: start backing off afresh
        if generation == self._generation:
            self.status = "stopped"
            self.queue.close()

    def _stream_once(self, generation):
        """Open the source and pump frames until it ends, fails or we stop.

        Returns (frames read, played to the end): the latter when the source is a file that
        delivered frames and then ended cleanly at its last frame, which is played again at
        once, without the backoff wait (see the module docstring)."""
        played_to_end = False
        try:
            source = self._opener(self.source, **self.source_options)
        except EdgekitError as exc:
            self.status = "unavailable"
            self.last_error = str(exc)
            return 0, False
        except Exception as exc:  # noqa: BLE001 - a backend crash must not kill the camera
            self.status = "unavailable"
            self.last_error = "%s: %s" % (type(exc).__name__, exc)
            return 0, False
        self.connects += 1
        self.connected_at = self._clock()
        self.last_frame_at = None
        base = self.next_index
        got = 0
        period = 1.0 / self.fps if self.fps > 0 else 0.0
        is_file = getattr(source, "kind", "") == "file"
        backpressure = self._stop if is_file and not period else None
        if backpressure is not None:
            self.yielding = yield_cpu()  # an unpaced file decodes only when inference waits
        next_due = self._clock()
        try:
            if not self._current(generation):
                return 0, False
            self.status = "streaming"
            mode = getattr(source, "decode_mode", None)
            if mode != self.decode_mode and mode == "resize":
                log.warning("camera %s: decode_scale = %d reduces the decode only for MJPEG "
                            "read through FFmpeg; this stream is %r, so each frame is decoded "
                            "in full and then reduced (more CPU than decode_scale = 1)",
                            self.camera_name, self.decode_scale, getattr(source, "fourcc", "?"))
            self.decode_mode = mode
            if source.width and source.height:
                self.frame_size = (source.height, source.width)
                if self.on_connect is not None:
                    self.on_connect(self.frame_size)
            for index, timestamp, frame in source:
                if not self._current(generation):
                    break
                now = self._clock()
                if period:
                    if is_file:  # a file plays at the configured rate, like a camera would
                        if now < next_due and self._stop.wait(next_due - now):
                            break
                        next_due = max(next_due + period, self._clock() - period)
                    elif now < next_due:  # a live source faster than wanted: skip this frame
                        self.decimated += 1
                        continue
                    else:
                        next_due = max(next_due + period, now - period)
                self.last_frame_at = self._clock()
                self.next_index = base + index + 1
                self.frames_in += 1
                got += 1
                self.queue.put(frame, base + index, timestamp, time.time(), backpressure)
            reason = source.stats.reason
            played_to_end = is_file and got > 0 and reason == END_OF_FILE
        except Exception as exc:  # noqa: BLE001 - decode errors, a released capture
            reason = "%s: %s" % (type(exc).__name__, exc)
        finally:
            try:
                source.close()
            except Exception:
                pass
        if generation != self._generation:
            return got, False  # abandoned by the watchdog; the new generation reports
        self.next_index += RECONNECT_GAP
        if not self._stop.is_set():
            if self.status != "stalled":
                self.status = "disconnected"
                self.last_error = "source ended: %s" % reason
            if played_to_end:
                log.info("camera %s: %s after %d frames; playing the file again", self.camera_name,
                         self.last_error, got)
            else:
                log.warning("camera %s: %s", self.camera_name, self.last_error)
        return got, played_to_end

    # -- reporting -------------------------------------------------------------------------------

    def snapshot(self):
        now = self._clock()
        return {
            "status": self.status,
            "source": self.source,
            "frames_in": self.frames_in,
            "dropped": self.queue.dropped,
            "decimated": self.decimated,
            "queue_depth": self.queue.depth(),
            "reconnects": self.reconnects,
            "stalls": self.stalls,
            "connects": self.connects,
            "last_error": self.last_error,
            "seconds_since_frame": (None if self.last_frame_at is None
                                    else round(now - self.last_frame_at, 3)),
            "frame_size": list(self.frame_size) if self.frame_size else None,
            "decode": self.decode_mode,
        }
