"""The MQTT spool: an on-disk, ordered queue of messages with an acknowledged position.

Why every message goes through the spool (not only while the broker is down): one path is
simpler to get right than two. A message is appended (and flushed to the OS) before anyone tries
to publish it, the publisher reads it back in order, and the position only moves past it once
the broker acknowledged it (QoS 1 PUBACK). A broker outage, a daemon crash or a power cut then
all look the same: on the next connection publishing resumes at the first unacknowledged
message. Nothing is lost; a message the broker took but whose PUBACK never arrived is sent again
(QoS 1's "at least once", the only duplicates there can be).

On disk, in ``spool_dir``: segment files ``seg-<first n>.jsonl``, one JSON line per message
``{"n": 42, "t": topic, "p": payload}`` with ``n`` increasing by one, and ``acked`` holding the
last acknowledged ``n`` (replaced atomically). Segments wholly acknowledged are deleted. A line
torn by a crash mid-write is cut off at startup. If the spool outgrows ``max_bytes`` the oldest
segment is dropped, loudly, and counted: a disk filling up would stop the camera entirely.

Why no fsync on the append/publish path: ``append`` only writes and flushes to the OS (a daemon
crash loses nothing); making it survive a power cut takes an fsync, which on a busy SD card or a
shared disk can take a second. :meth:`Spool.checkpoint` does all of it (the open segment, segments
closed since, the ``acked`` file, deleting acknowledged segments) from the sink's sync thread,
with the lock held only to take a snapshot, so an fsync never stalls inference nor publishing.
"""

import json
import logging
import os
import threading

from edge.atomic import write_text
from edge.errors import EdgekitError

log = logging.getLogger("edgekit.serve.spool")

SEGMENT_BYTES = 1 << 20


class Spool(object):
    def __init__(self, directory, max_bytes=256 << 20, segment_bytes=SEGMENT_BYTES):
        self.directory = os.fspath(directory)
        self.max_bytes = int(max_bytes)
        self.segment_bytes = int(segment_bytes)
        try:
            os.makedirs(self.directory, exist_ok=True)
            probe = os.path.join(self.directory, ".write-test")
            with open(probe, "w") as handle:
                handle.write("ok")
            os.remove(probe)
        except OSError as exc:
            raise EdgekitError("spool directory %s is not writable (%s); set "
                               "outputs.mqtt.spool_dir to a writable directory"
                               % (self.directory, exc))
        self._lock = threading.Lock()
        self._sync_lock = threading.Lock()  # one checkpoint at a time
        self._unsynced = []                 # segments closed since the last checkpoint
        self.dropped = 0
        self.acked = self._read_acked()
        self._segments = self._scan()  # [(first n, path)], oldest first
        self.last_n = self._recover_last()
        if self.acked > self.last_n:  # acked file newer than the data (segments removed)
            self.last_n = self.acked
        self._persisted_acked = self.acked
        self._writer = None
        self._writer_bytes = 0
        self._reader = None           # (segment index, file handle)
        self._read_n = self.acked     # last n handed to the publisher
        self._pending_acks = set()
        self._bytes = sum(os.path.getsize(p) for _, p in self._segments)

    # -- startup ---------------------------------------------------------------------------------

    def _acked_path(self):
        return os.path.join(self.directory, "acked")

    def _read_acked(self):
        try:
            with open(self._acked_path(), "r") as handle:
                return int(handle.read().strip() or 0)
        except FileNotFoundError:
            return 0
        except (OSError, ValueError) as exc:
            raise EdgekitError("spool file %s is corrupt (%s); delete it to resend the whole "
                               "spool" % (self._acked_path(), exc))

    def _scan(self):
        segments = []
        for name in os.listdir(self.directory):
            if name.startswith("seg-") and name.endswith(".jsonl"):
                try:
                    first = int(name[4:-6])
                except ValueError:
                    continue
                segments.append((first, os.path.join(self.directory, name)))
        return sorted(segments)

    def _recover_last(self):
        """The last complete message number on disk; a torn last line is cut off."""
        while self._segments:
            first, path = self._segments[-1]
            with open(path, "rb+") as handle:
                data = handle.read()
                end = data.rfind(b"\n") + 1
                if end != len(data):
                    log.warning("spool %s: cutting a torn last line (%d bytes)", path,
                                len(data) - end)
                    handle.truncate(end)
                data = data[:end]
            lines = data.splitlines()
            if not lines:
                os.remove(path)
                self._segments.pop()
                continue
            return int(json.loads(lines[-1].decode("utf-8"))["n"])
        return self.acked

    # -- writing ---------------------------------------------------------------------------------

    def append(self, topic, payload):
        """Store one message; returns its number. Flushed to the OS before returning."""
        with self._lock:
            n = self.last_n + 1
            line = (json.dumps({"n": n, "t": topic, "p": payload}, separators=(",", ":"))
                    + "\n").encode("utf-8")
            if self._writer is None or self._writer_bytes >= self.segment_bytes:
                self._roll(n)
            self._writer.write(line)
            self._writer.flush()
            self._writer_bytes += len(line)
            self._bytes += len(line)
            self.last_n = n
            if self._bytes > self.max_bytes:
                self._drop_oldest_locked()
            return n

    def _roll(self, n):
        if self._writer is not None:
            self._writer.close()  # flushed; fsynced by the next checkpoint, off this path
            self._unsynced.append(self._segments[-1][1])
        path = os.path.join(self.directory, "seg-%012d.jsonl" % n)
        self._writer = open(path, "ab")
        self._writer_bytes = 0
        self._segments.append((n, path))

    def _drop_oldest_locked(self):
        if len(self._segments) < 2:
            return
        first, path = self._segments[0]
        next_first = self._segments[1][0]
        lost = max(0, next_first - max(first, self.acked + 1))
        self._close_reader_if(0)
        self._bytes -= os.path.getsize(path)
        os.remove(path)
        self._segments.pop(0)
        if self._reader is not None:
            self._reader = (self._reader[0] - 1, self._reader[1])
        self.dropped += lost
        self.acked = max(self.acked, next_first - 1)
        self._read_n = max(self._read_n, self.acked)
        log.error("spool %s is over outputs.mqtt.spool_max_bytes: dropped %d unsent messages "
                  "(the broker has been unreachable too long)", self.directory, lost)

    # -- reading ---------------------------------------------------------------------------------

    def next(self):
        """The next message not yet handed out, as (n, topic, payload), or None."""
        with self._lock:
            if self._read_n >= self.last_n:
                return None
            while True:
                if self._reader is None:
                    index = self._segment_for(self._read_n + 1)
                    handle = open(self._segments[index][1], "rb")
                    self._reader = (index, handle)
                index, handle = self._reader
                line = handle.readline()
                if not line:
                    if index + 1 >= len(self._segments):
                        return None  # keep the handle: appends show up on the next read
                    handle.close()
                    self._reader = None
                    self._read_n = max(self._read_n, self._segments[index + 1][0] - 1)
                    continue
                record = json.loads(line.decode("utf-8"))
                if record["n"] <= self._read_n:
                    continue  # skipping what an earlier run already sent
                self._read_n = record["n"]
                return record["n"], record["t"], record["p"]

    def _segment_for(self, n):
        index = 0
        for i, (first, _) in enumerate(self._segments):
            if first <= n:
                index = i
        return index

    def _close_reader_if(self, index):
        if self._reader is not None and self._reader[0] == index:
            self._reader[1].close()
            self._reader = None

    # -- acknowledging ---------------------------------------------------------------------------

    def ack(self, n):
        """Message ``n`` reached the broker; move the acknowledged position if contiguous."""
        with self._lock:
            if n <= self.acked:
                return
            self._pending_acks.add(n)
            while self.acked + 1 in self._pending_acks:
                self._pending_acks.discard(self.acked + 1)
                self.acked += 1

    def checkpoint(self):
        """Make what was appended durable, persist the acknowledged position and delete wholly
        acknowledged segments. The fsyncs and file writes run outside the lock."""
        with self._sync_lock:
            with self._lock:
                fd = None
                if self._writer is not None:
                    self._writer.flush()
                    fd = os.dup(self._writer.fileno())
                closed, self._unsynced = self._unsynced, []
                acked = self.acked
            try:
                for path in closed:
                    _fsync_path(path)
                if fd is not None:
                    os.fsync(fd)
            finally:
                if fd is not None:
                    os.close(fd)
            if acked == self._persisted_acked:
                return
            write_text(self._acked_path(), "%d\n" % acked)
            self._persisted_acked = acked
            doomed = []
            with self._lock:
                while len(self._segments) > 1 and self._segments[1][0] <= acked + 1:
                    self._close_reader_if(0)
                    _, path = self._segments.pop(0)
                    self._bytes -= os.path.getsize(path)
                    doomed.append(path)
                    if self._reader is not None:
                        self._reader = (self._reader[0] - 1, self._reader[1])
            for path in doomed:
                try:
                    os.remove(path)
                except FileNotFoundError:
                    pass

    def rewind(self):
        """Hand out everything unacknowledged again (e.g. a new client session)."""
        with self._lock:
            if self._reader is not None:
                self._reader[1].close()
                self._reader = None
            self._read_n = self.acked
            self._pending_acks.clear()

    @property
    def depth(self):
        """Messages stored but not yet acknowledged by the broker."""
        return self.last_n - self.acked

    @property
    def bytes(self):
        return self._bytes

    def close(self):
        self.checkpoint()
        with self._lock:
            if self._writer is not None:
                self._writer.close()
                self._writer = None
            if self._reader is not None:
                self._reader[1].close()
                self._reader = None


def _fsync_path(path):
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:  # dropped (over max_bytes) or deleted since: nothing to sync
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
