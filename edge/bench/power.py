"""Power samplers. Only ``tegrastats`` (Jetson) exists; without a sampler there are no power
figures at all, never estimated ones.

``tegrastats --interval MS`` prints one line per interval; the board's input rail is ``VDD_IN``
(Orin: ``VDD_IN 4424mW/4424mW``) or ``POM_5V_IN`` (Nano/TX2/Xavier: ``POM_5V_IN 2876/2876``); the
first number is the instantaneous power in mW, the second a running average.
"""

import re
import shutil
import subprocess
import threading
import time

from edge.errors import EdgekitError

RAILS = ("VDD_IN", "POM_5V_IN")
_RAIL_RE = re.compile(r"\b(%s)\s+(\d+)(?:mW)?/(\d+)(?:mW)?" % "|".join(RAILS))


def parse_tegrastats(line):
    """Instantaneous board input power in mW from one tegrastats line, or None."""
    match = _RAIL_RE.search(line)
    return float(match.group(2)) if match else None


class TegrastatsSampler(object):
    """Runs ``tegrastats`` in the background; ``stop()`` returns the mW samples taken."""

    def __init__(self, interval_ms=100, command="tegrastats"):
        path = shutil.which(command)
        if path is None:
            raise EdgekitError("power = \"tegrastats\" but tegrastats is not on the target's PATH; "
                               "it ships with JetPack (set power = \"none\" on other boards)")
        self.argv = [path, "--interval", str(int(interval_ms))]
        self.samples = []
        self._proc = None
        self._thread = None

    def start(self):
        self._proc = subprocess.Popen(self.argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      universal_newlines=True)
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()
        return self

    def _read(self):
        for line in self._proc.stdout:
            value = parse_tegrastats(line)
            if value is not None:
                self.samples.append((time.perf_counter(), value))

    def stop(self):
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:  # pragma: no cover
                self._proc.kill()
            self._thread.join(timeout=5)
        return [value for _, value in self.samples]


def make_sampler(kind, interval_ms):
    if kind in (None, "none"):
        return None
    if kind == "tegrastats":
        return TegrastatsSampler(interval_ms)
    raise EdgekitError("unknown power sampler %r; use none or tegrastats" % kind)


def power_figures(samples_mw, mean_latency_ms, sampler):
    """{sampler, samples, mean_mw, energy_mj_per_inference} or None without samples."""
    if not samples_mw:
        return None
    mean = sum(samples_mw) / len(samples_mw)
    return {"sampler": sampler, "samples": len(samples_mw), "mean_mw": mean,
            "max_mw": max(samples_mw),
            "energy_mj_per_inference": mean * mean_latency_ms / 1000.0}
