"""The JSON-lines sink: every event as one line in a local file, rotated by size.

Why a local file besides MQTT: it is the record that needs no network, and what an operator
greps first. Each line is written whole and flushed to the OS at once, so a crash loses at most
the line being written and never leaves a half line in the middle; ``close()`` fsyncs. Rotation
is by size (``max_bytes``): ``events.jsonl`` -> ``events.jsonl.1`` -> ... -> ``.<keep>``, each
step an atomic rename, so a reader never sees a file vanish half-read under its name.
"""

import json
import os
import threading

from edge.errors import EdgekitError


class JsonlSink(object):
    name = "jsonl"

    def __init__(self, path, max_bytes=10 << 20, keep=5):
        self.path = os.fspath(path)
        self.max_bytes = int(max_bytes)
        self.keep = int(keep)
        directory = os.path.dirname(os.path.abspath(self.path))
        if not os.path.isdir(directory):
            raise EdgekitError("outputs.jsonl.path: directory %s does not exist; create it or "
                               "change the path" % directory)
        self._lock = threading.Lock()
        try:
            self._handle = open(self.path, "ab")
        except OSError as exc:
            raise EdgekitError("outputs.jsonl.path: cannot open %s for appending (%s)"
                               % (self.path, exc))
        self._size = self._handle.tell()
        self.written = 0
        self.rotations = 0

    def write(self, event):
        line = (json.dumps(event, separators=(",", ":")) + "\n").encode("utf-8")
        with self._lock:
            if self._size and self._size + len(line) > self.max_bytes:
                self._rotate()
            self._handle.write(line)
            self._handle.flush()
            self._size += len(line)
            self.written += 1

    def _rotate(self):
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self._handle.close()
        if self.keep > 0:
            for i in range(self.keep - 1, 0, -1):
                older = "%s.%d" % (self.path, i)
                if os.path.exists(older):
                    os.replace(older, "%s.%d" % (self.path, i + 1))
            os.replace(self.path, self.path + ".1")
        else:
            os.remove(self.path)
        self._handle = open(self.path, "ab")
        self._size = 0
        self.rotations += 1

    def flush(self, timeout=None):
        with self._lock:
            self._handle.flush()
            os.fsync(self._handle.fileno())
        return True

    def close(self, timeout=None):
        with self._lock:
            if self._handle is not None:
                self._handle.flush()
                os.fsync(self._handle.fileno())
                self._handle.close()
                self._handle = None

    def snapshot(self):
        return {"path": self.path, "written": self.written, "rotations": self.rotations}
