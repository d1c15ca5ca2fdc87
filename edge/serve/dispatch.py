"""The dispatcher: hands each event to every sink, and keeps one sink's failure from the others.

Why a separate object: workers (one per camera) emit concurrently; sinks are thread-safe, and a
sink raising (a full disk) must neither kill a worker nor starve the other sinks. Failures are
counted per sink and logged once per burst, not once per event.
"""

import collections
import logging

log = logging.getLogger("edgekit.serve.dispatch")


class Dispatcher(object):
    def __init__(self, sinks=()):
        self.sinks = list(sinks)
        self.emitted = 0
        self.failures = {}

    def add(self, sink):
        self.sinks.append(sink)

    def emit(self, event):
        self.emitted += 1
        for sink in self.sinks:
            try:
                sink.write(event)
            except Exception as exc:  # noqa: BLE001
                count = self.failures.get(sink.name, 0) + 1
                self.failures[sink.name] = count
                if count == 1 or count % 1000 == 0:
                    log.error("sink %s failed %d time(s): %s", sink.name, count, exc)


class Recent(object):
    """The last ``size`` samples of a duration (ms), summarised for /stats as median/p99/max.

    Why recent samples rather than a running mean: a p99 tail is what explains a slow event, and
    a mean hides it. A deque append per sample; sorting only when /stats is read."""

    def __init__(self, size=1024):
        self._samples = collections.deque(maxlen=int(size))
        self.count = 0

    def add(self, ms):
        self._samples.append(ms)
        self.count += 1

    def summary(self):
        samples = sorted(self._samples)
        if not samples:
            return {"n": 0}
        last = len(samples) - 1
        return {"n": len(samples), "median": round(samples[last // 2], 3),
                "p99": round(samples[int(round(0.99 * last))], 3),
                "max": round(samples[-1], 3)}
