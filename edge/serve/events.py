"""From window results to events: one event type per task of the model, and alerts.

Events follow the manifest's tasks, by kind, so the swimmer's ``action`` / ``identity`` and the
face model's ``gender`` / ``race`` / ``age`` go through the same code (the event ``type`` is the
task name, and so is the last MQTT topic level):

* classification (:class:`LabelPolicy`): an event when a region's label changes, debounced.
  Why debounce: a per-window classifier flickers at the boundary between two strokes; publishing
  every flicker would bury the one change that matters. The label changes only when a new label
  wins ``debounce_windows`` windows in a row (windows scoring below ``min_score`` do not vote and
  do not break a streak). A classification task with an embedding (``identity`` with
  ``identity_embedding``) takes its label from the gallery's match when a gallery is loaded.
* regression (:class:`ValuePolicy`): an event when the value moved by more than ``min_change``
  since the last published value, for ``debounce_windows`` windows in a row (the first value is
  published once it held that long). Why not every window: a value changes every window, so a
  plain "changed" would flood; why not a fixed period: a steady value then costs nothing, and a
  real move is seen within ``debounce_windows`` windows.
* embedding without a classification task of its own: gallery matches, as a label (only with a
  gallery; a vector alone is no event).

Why alerts are separate rules: "drowning with p >= 0.8 for 3 consecutive windows", or "age
below 16 for 5 windows", is a different question from "what is the label": it must fire even if
the debounced label never flips, must not fire on one bad window, and must not repeat every
window (``cooldown_s``).

Every event is a dict (the JSON payload on every sink)::

    {"id": "<run>-<seq>", "seq": 17, "type": "<task name>" | "alert",
     "camera": "pool", "region": "lane1", "time": "2024-05-01T12:00:00.123456Z",
     "frame_time": 1714564800.123456,   # wall clock of the frame that completed the window
     "frames": [first, last], "stream_time": [t_first, t_last],
     # classification: "label", "score", "previous" (label before the change, null for the
     #   first), "scores" {label: output}; with an embedding: "source": "gallery" |
     #   "classifier", and from the gallery "similarity", "nearest"
     # regression: "value", "previous" (last published value, null for the first), "min_change"
     # alert: "rule", "task", "consecutive", "windows" (the streak length), and
     #   classification: "label", "score", "min_score", "scores"
     #   regression: "value", "above" and/or "below"
    }

``id`` is unique across restarts (``run`` is random per process) and ``seq`` increases by one
per event of a run, so a consumer can de-duplicate QoS-1 redeliveries and check ordering.

Per window this only compares numbers and labels; dicts are built only for events, which are
rare.
"""

import datetime
import os
import threading
import time

ALERT = "alert"


def new_run_id():
    return os.urandom(4).hex()


class EventFactory(object):
    """Numbers events and fills the fields every event has. Thread-safe (workers share it)."""

    def __init__(self, run_id=None, types=()):
        self.run_id = run_id or new_run_id()
        self._lock = threading.Lock()
        self._seq = 0
        self.counts = {ALERT: 0}
        self.declare(types)

    def declare(self, types):
        """Event types to count from zero (so /stats and /metrics show them before the first)."""
        for kind in types:
            self.counts.setdefault(kind, 0)

    def make(self, kind, camera, region, result, frame_time, **fields):
        with self._lock:
            self._seq += 1
            seq = self._seq
            self.counts[kind] = self.counts.get(kind, 0) + 1
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


class LabelPolicy(object):
    """Label-change events of one classification task (or of a gallery, ``classifier=False``).

    ``paired``: the task has an embedding, so its events say their ``source`` and a gallery
    match, when there is one, decides the label.
    """

    def __init__(self, task, debounce_windows, min_score=None, paired=False, classifier=True):
        self.task = task
        self.debounce_windows = int(debounce_windows)
        self.min_score = None if min_score is None else float(min_score)
        self.paired = paired
        self.classifier = classifier

    def state(self):
        return _Debounce(self.debounce_windows)

    def describe(self):
        what = "label changes" if self.classifier else "gallery matches"
        return "%s (debounce %d)" % (what, self.debounce_windows)

    def on_window(self, debounce, result, emit):
        match = result.match if self.paired else None
        task = result.tasks.get(self.task) if self.classifier else None
        if match is not None:
            label, score = match.name, float(match.similarity)
        elif task is not None:
            if self.min_score is not None and task.score < self.min_score:
                return
            label, score = task.label, float(task.score)
        else:
            return
        previous = debounce.vote(label)
        if previous is False:
            return
        fields = {"label": label, "score": round(score, 6),
                  "previous": None if previous is True else previous}
        if self.paired:
            fields["source"] = "gallery" if match is not None else "classifier"
        if match is not None:
            fields["similarity"] = round(float(match.similarity), 6)
            fields["nearest"] = match.nearest
        if task is not None:
            fields["scores"] = task.scores()
        emit(self.task, result, fields)


class _ValueState(object):
    __slots__ = ("published", "streak")

    def __init__(self):
        self.published = None
        self.streak = 0


class ValuePolicy(object):
    """Value events of one regression task: moved by more than ``min_change`` since the last
    published value, for ``debounce_windows`` windows in a row (see the module docstring)."""

    def __init__(self, task, debounce_windows, min_change):
        self.task = task
        self.debounce_windows = int(debounce_windows)
        self.min_change = float(min_change)

    def state(self):
        return _ValueState()

    def describe(self):
        return "value changes > %g (debounce %d)" % (self.min_change, self.debounce_windows)

    def on_window(self, state, result, emit):
        task = result.tasks.get(self.task)
        if task is None:
            return
        value = task.value
        last = state.published
        if last is not None and abs(value - last) <= self.min_change:
            state.streak = 0
            return
        state.streak += 1
        if state.streak < self.debounce_windows:
            return
        state.published, state.streak = value, 0
        emit(self.task, result, {"value": round(value, 6),
                                 "previous": None if last is None else round(last, 6),
                                 "min_change": self.min_change})


class AlertRule(object):
    """A rule on one task, for ``consecutive`` windows in a row, then quiet for ``cooldown_s``:
    classification: label == ``label`` with score >= ``min_score``; regression: value above
    ``above`` or below ``below``. ``rule`` is a checked [[alerts]] table; ``kind`` the task's."""

    def __init__(self, rule, kind, task=None):
        self.name = rule["name"]
        self.task = task or rule["task"]
        self.kind = kind
        self.label = rule.get("label")
        min_score = rule.get("min_score")
        self.min_score = 0.5 if min_score is None else float(min_score)
        self.above = rule.get("above")
        self.below = rule.get("below")
        self.consecutive = int(rule["consecutive"])
        self.cooldown_s = float(rule["cooldown_s"])
        self.cameras = rule.get("cameras")

    def applies_to(self, camera):
        return not self.cameras or camera in self.cameras

    def hit(self, task):
        if self.kind == "regression":
            value = task.value
            return (self.above is not None and value > self.above) or \
                (self.below is not None and value < self.below)
        return task.label == self.label and task.score >= self.min_score

    def fields(self, task, streak):
        fields = {"rule": self.name, "task": self.task, "consecutive": self.consecutive,
                  "windows": streak}
        if self.kind == "regression":
            fields["value"] = round(float(task.value), 6)
            for key in ("above", "below"):
                if getattr(self, key) is not None:
                    fields[key] = getattr(self, key)
        else:
            fields.update(label=task.label, score=round(float(task.score), 6),
                          min_score=self.min_score, scores=task.scores())
        return fields


class _AlertState(object):
    __slots__ = ("rule", "streak", "last_fired")

    def __init__(self, rule):
        self.rule = rule
        self.streak = 0
        self.last_fired = None


class RegionEvents(object):
    """The event logic of one region of one camera: a state per policy and per alert rule."""

    def __init__(self, camera, region, factory, policies, rules, clock=time.monotonic):
        self.camera = camera
        self.region = region
        self.factory = factory
        self.policies = [(policy, policy.state()) for policy in policies]
        self.alerts = [_AlertState(r) for r in rules if r.applies_to(camera)]
        self._clock = clock
        self._frame_time = 0.0
        self._out = None
        self._emit_bound = self._emit  # bound once: none made per window

    def _emit(self, kind, result, fields):
        self._out.append(self.factory.make(kind, self.camera, self.region, result,
                                           self._frame_time, **fields))

    def on_window(self, result, frame_time, out):
        """Append the events ``result`` causes to ``out``."""
        self._frame_time, self._out = frame_time, out
        emit = self._emit_bound
        for policy, state in self.policies:
            policy.on_window(state, result, emit)
        tasks = result.tasks
        for state in self.alerts:
            rule = state.rule
            task = tasks.get(rule.task)
            if task is None:
                continue
            if rule.hit(task):
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
            emit(ALERT, result, rule.fields(task, state.streak))
        self._out = None


def event_types(policies):
    """The event types ``policies`` can emit, plus alerts."""
    return [p.task for p in policies] + [ALERT]
