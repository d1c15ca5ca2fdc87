"""``WindowResult``: what the streaming runner says about one region over one window of frames.

A small record, not a dict, so callers get attribute names checked; ``to_dict()`` gives the JSON
line ``edgekit run --jsonl`` writes. Task outputs are keyed by task name (from the manifest), with
shortcuts for the swim tasks (action, identity, identity_embedding).
"""

import numpy as np


class TaskOutput(object):
    """One task's head output for a window: ``values`` (float32) and, for classification, the
    arg-max ``label`` and its ``score``."""

    __slots__ = ("name", "kind", "values", "label", "score")

    def __init__(self, name, kind, values, label=None, score=None):
        self.name = name
        self.kind = kind
        self.values = values
        self.label = label
        self.score = score

    def to_dict(self):
        data = {"kind": self.kind, "values": [round(float(v), 6) for v in self.values]}
        if self.label is not None:
            data["label"] = self.label
            data["score"] = round(float(self.score), 6)
        return data


class WindowResult(object):
    __slots__ = ("roi_index", "roi", "first_frame", "last_frame", "first_time", "last_time",
                 "tasks", "match", "timings", "gap")

    def __init__(self, roi_index, roi, first_frame, last_frame, first_time, last_time, tasks,
                 match=None, timings=None, gap=False):
        self.roi_index = roi_index
        self.roi = roi                  # (x, y, w, h) or None for the whole frame
        self.first_frame = first_frame  # frame range the window covers, inclusive
        self.last_frame = last_frame
        self.first_time = first_time    # seconds (source timestamps), -1 if unknown
        self.last_time = last_time
        self.tasks = tasks              # {task name: TaskOutput}
        self.match = match              # gallery Match for the embedding, or None
        self.timings = timings or {}    # ms: preprocess, frame_model (last frame), head
        self.gap = gap                  # the window spans a gap kept by the "hold" policy

    def _task(self, name):
        return self.tasks.get(name)

    @property
    def action_probs(self):
        task = self._task("action")
        return None if task is None else task.values

    @property
    def action_label(self):
        task = self._task("action")
        return None if task is None else task.label

    @property
    def identity_probs(self):
        task = self._task("identity")
        return None if task is None else task.values

    @property
    def identity_label(self):
        task = self._task("identity")
        return None if task is None else task.label

    @property
    def embedding(self):
        for task in self.tasks.values():
            if task.kind == "embedding":
                return task.values
        return None

    def to_dict(self):
        return {
            "roi": self.roi_index,
            "box": list(self.roi) if self.roi is not None else None,
            "frames": [self.first_frame, self.last_frame],
            "time": [round(self.first_time, 6), round(self.last_time, 6)],
            "gap": self.gap,
            "tasks": {name: task.to_dict() for name, task in self.tasks.items()},
            "match": self.match.to_dict() if self.match is not None else None,
            "timings_ms": {k: round(v, 4) for k, v in self.timings.items()},
        }

    def __repr__(self):
        labels = ", ".join("%s=%s" % (n, t.label) for n, t in self.tasks.items() if t.label)
        return "WindowResult(roi=%s, frames=%d..%d, %s)" % (self.roi_index, self.first_frame,
                                                           self.last_frame, labels)


def dequantize_into(raw, spec, out):
    """Head output ``raw`` -> float32 ``out`` (dequantized with the spec's scale/zero point)."""
    if spec.scale:
        np.subtract(raw, spec.zero_point or 0, out=out, casting="unsafe")
        np.multiply(out, spec.scale, out=out)
    else:
        np.copyto(out, raw, casting="unsafe")
    return out
