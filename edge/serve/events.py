"""From window results to events: debounced ``action`` / ``identity`` changes, and alerts.

Why debounce: a per-window classifier flickers at the boundary between two strokes; publishing
every flicker would bury the one change that matters. A region's label changes only when a new
label wins ``debounce_windows`` windows in a row (windows scoring below ``min_score`` do not vote
and do not break a streak).

Why alerts are separate rules: "drowning" with p >= 0.8 for 3 consecutive windows is a
different question from "what is the label": it must fire even if the debounced label never
flips, must not fire on one bad window, and must not repeat every window (``cooldown_s``).

Every event is a dict (the JSON payload on every sink)::

    {"id": "<run>-<seq>", "seq": 17, "type": "action" | "identity" | "alert",
     "camera": "pool", "region": "lane1", "time": "2024-05-01T12:00:00.123456Z",
     "frame_time": 1714564800.123456,   # wall clock of the frame that completed the window
     "frames": [first, last], "stream_time": [t_first, t_last],
     "label": "drowning", "score": 0.93, "scores": {"breaststroke": 0.01, ...},
     # action / identity: "previous": label before the change (null for the first)
     # identity: "source": "gallery" | "classifier", "similarity", "nearest" (gallery only)
     # alert: "rule", "task", "min_score", "consecutive", "windows" (the streak length)
    }

``id`` is unique across restarts (``run`` is random per process) and ``seq`` increases by one
per event of a run, so a consumer can de-duplicate QoS-1 redeliveries and check ordering.
"""

import datetime
import os
import threading
import time


def new_run_id():
    return os.urandom(4).hex()


class EventFactory(object):
    """Numbers events and fills the fields every event has. Thread-safe (workers share it)."""

    def __init__(self, run_id=None):
        self.run_id = run_id or new_run_id()
        self._lock = threading.Lock()
        self._seq = 0
        self.counts = {"action": 0, "identity": 0, "alert": 0}

    def make(self, kind, camera, region, result, frame_time, **fields):
        with self._lock:
            self._seq += 1
            seq = self._seq
            self.counts[kind] += 1
        event = {
            "id": "%s-%d" % (self.run_id, seq),
            "seq": seq,
            "type": kind,
            "camera": camera,
            "region": region,
            "time": _iso(frame_time),
            "frame_time": round(frame_time, 6),
            "frames": [result.first_frame, result.last_frame],
            "stream_time": [round(result.first_time, 6), round(result.last_time, 6)],
        }
        event.update(fields)
        return event


def _iso(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%S.%fZ")


class _Debounce(object):
    """Current label of one region for one task, changed only after ``need`` agreeing votes."""

    __slots__ = ("need", "current", "candidate", "count")

    def __init__(self, need):
        self.need = need
        self.current = None
        self.candidate = None
        self.count = 0

    def vote(self, label):
        """Returns the previous label if ``label`` just became current, else False."""
        if label == self.current:
            self.candidate, self.count = None, 0
            return False
        if label == self.candidate:
            self.count += 1
        else:
            self.candidate, self.count = label, 1
        if self.count >= self.need:
            previous = self.current
            self.current, self.candidate, self.count = label, None, 0
            return previous if previous is not None else True
        return False


class AlertRule(object):
    """``task`` label == ``label`` with score >= ``min_score`` for ``consecutive`` windows."""

    def __init__(self, rule):
        self.name = rule["name"]
        self.task = rule["task"]
        self.label = rule["label"]
        self.min_score = float(rule["min_score"])
        self.consecutive = int(rule["consecutive"])
        self.cooldown_s = float(rule["cooldown_s"])
        self.cameras = rule.get("cameras")

    def applies_to(self, camera):
        return not self.cameras or camera in self.cameras


class _AlertState(object):
    __slots__ = ("rule", "streak", "last_fired")

    def __init__(self, rule):
        self.rule = rule
        self.streak = 0
        self.last_fired = None


class RegionEvents(object):
    """The event logic of one region of one camera."""

    def __init__(self, camera, region, factory, events_cfg, rules, labels, clock=time.monotonic):
        self.camera = camera
        self.region = region
        self.factory = factory
        self.min_score = float(events_cfg["min_score"])
        self.emit_action = bool(events_cfg["action"])
        self.emit_identity = bool(events_cfg["identity"])
        need = int(events_cfg["debounce_windows"])
        self.action = _Debounce(need)
        self.identity = _Debounce(need)
        self.alerts = [_AlertState(r) for r in rules if r.applies_to(camera)]
        self.labels = labels  # task name -> labels (from the manifest)
        self._clock = clock

    def on_window(self, result, frame_time, out):
        """Append the events ``result`` causes to ``out``."""
        tasks = result.tasks
        action = tasks.get("action")
        if action is not None and self.emit_action and action.score >= self.min_score:
            previous = self.action.vote(action.label)
            if previous is not False:
                out.append(self.factory.make(
                    "action", self.camera, self.region, result, frame_time,
                    label=action.label, score=round(float(action.score), 6),
                    previous=None if previous is True else previous,
                    scores=_labelled(action, self.labels.get("action", ()))))
        if self.emit_identity:
            self._identity(result, frame_time, out)
        for state in self.alerts:
            rule = state.rule
            task = tasks.get(rule.task)
            if task is None:
                continue
            if task.label == rule.label and task.score >= rule.min_score:
                state.streak += 1
            else:
                state.streak = 0
                continue
            if state.streak < rule.consecutive:
                continue
            now = self._clock()
            if state.last_fired is not None and now - state.last_fired < rule.cooldown_s:
                continue
            state.last_fired = now
            out.append(self.factory.make(
                "alert", self.camera, self.region, result, frame_time,
                rule=rule.name, task=rule.task, label=task.label,
                score=round(float(task.score), 6), min_score=rule.min_score,
                consecutive=rule.consecutive, windows=state.streak,
                scores=_labelled(task, self.labels.get(rule.task, ()))))

    def _identity(self, result, frame_time, out):
        match = result.match
        task = result.tasks.get("identity")
        if match is not None:
            label, score, source = match.name, float(match.similarity), "gallery"
        elif task is not None:
            if task.score < self.min_score:
                return
            label, score, source = task.label, float(task.score), "classifier"
        else:
            return
        previous = self.identity.vote(label)
        if previous is False:
            return
        fields = {"label": label, "score": round(score, 6), "source": source,
                  "previous": None if previous is True else previous}
        if match is not None:
            fields["similarity"] = round(float(match.similarity), 6)
            fields["nearest"] = match.nearest
        if task is not None:
            fields["scores"] = _labelled(task, self.labels.get("identity", ()))
        out.append(self.factory.make("identity", self.camera, self.region, result, frame_time,
                                     **fields))


def _labelled(task, labels):
    return {label: round(float(v), 6) for label, v in zip(labels, task.values)}
