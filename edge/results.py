"""``WindowResult``: what the streaming runner says about one region over one window of frames.

A small record, not a dict, so callers get attribute names checked; ``to_dict()`` gives the JSON
line ``edgekit run --jsonl`` writes. Task outputs are keyed by task name, exactly as the
manifest lists them: nothing here knows a model family (no "action" or "identity" shortcuts), so
the swimmer, the face instance and any later model go through the same code.

How a head output becomes a :class:`TaskOutput` depends only on the task's kind, and is decided
in one place, :func:`decode_task`:

* classification: ``label`` (arg-max) and its ``score``; ``values`` are the head's outputs in
  label order. The score is what the head gives: a probability for softmax heads (the swimmer,
  gender), a margin for squared-hinge heads (race), so a ``min_score`` is chosen per task.
* regression: ``value``, the head's single output (e.g. age in years).
* embedding: ``vector`` (= ``values``), L2-normalised by the model, matched against a gallery.
"""

import numpy as np


class TaskOutput(object):
    """One task's head output for a window (see the module docstring for what each kind fills)."""

    __slots__ = ("name", "kind", "values", "label", "score", "labels", "value")

    def __init__(self, name, kind, values, label=None, score=None, labels=(), value=None):
        self.name = name
        self.kind = kind
        self.values = values    # float32 outputs of the head for this task
        self.label = label
        self.score = score
        self.labels = labels    # classification: the manifest's label list (shared, not copied)
        self.value = value

    @property
    def vector(self):
        """The embedding (embedding tasks), else None."""
        return self.values if self.kind == "embedding" else None

    def scores(self):
        """classification: {label: output} (for events and JSON; built only when asked)."""
        return {label: round(float(v), 6) for label, v in zip(self.labels, self.values)}

    def to_dict(self):
        if self.kind == "classification":
            return {"kind": self.kind, "label": self.label, "score": round(float(self.score), 6),
                    "scores": self.scores()}
        if self.kind == "regression":
            return {"kind": self.kind, "value": round(float(self.value), 6)}
        return {"kind": self.kind, "values": [round(float(v), 6) for v in self.values]}


def decode_task(task, values):
    """Float head outputs ``values`` of manifest task ``task`` -> :class:`TaskOutput`.

    The one place that knows what each task kind means (see the module docstring); the runner
    calls it once per task per window.
    """
    if task.kind == "classification":
        # the arg-max in Python over a few floats (the first of equal maxima, as np.argmax):
        # right after the frame invoke numpy's code is cold, and np.argmax and a numpy scalar
        # are several cold calls (README, "The runner's overhead on a faster CPU")
        scores = values.tolist()
        score = max(scores)
        best = scores.index(score)
        return TaskOutput(task.name, task.kind, values, task.labels[best], score,
                          labels=task.labels)
    if task.kind == "regression":
        return TaskOutput(task.name, task.kind, values, value=float(values[0]))
    return TaskOutput(task.name, task.kind, values)


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
        self.tasks = tasks              # {task name: TaskOutput}, in the manifest's order
        self.match = match              # gallery Match for the embedding, or None
        self.timings = timings or {}    # ms: preprocess, frame_model (last frame), head
        self.gap = gap                  # the window spans a gap kept by the "hold" policy

    @property
    def embedding(self):
        """The vector of the model's (first) embedding task, or None: what a gallery matches."""
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
        words = ", ".join("%s=%s" % (n, describe(t)) for n, t in self.tasks.items()
                          if t.kind != "embedding")
        return "WindowResult(roi=%s, frames=%d..%d, %s)" % (self.roi_index, self.first_frame,
                                                           self.last_frame, words)


def describe(task):
    """A short human word for a task output: its label, or its value (regression)."""
    if task.kind == "classification":
        return task.label
    if task.kind == "regression":
        return "%.1f" % task.value
    return "[%d]" % len(task.values)


def dequantize_into(raw, spec, out):
    """Head output ``raw`` -> float32 ``out`` (dequantized with the spec's scale/zero point)."""
    if spec.scale:
        np.subtract(raw, spec.zero_point or 0, out=out, casting="unsafe")
        np.multiply(out, spec.scale, out=out)
    else:
        np.copyto(out, raw, casting="unsafe")
    return out
