"""The serve config against the model directory: what only the manifest can tell.

The config file is checked on its own first (:mod:`edge.serve.config`); its events and alert
rules then name tasks, and only the model's manifest says which tasks exist, of which kind, with
which labels. :func:`model_problems` lists every disagreement with the key path the user wrote
(``alerts[1].task``, ``events.tasks.age.min_change``) and what the model has, so a face model
with a swimmer's rules fails at start-up (and in ``--check-config``) instead of staying silent.
:func:`event_policies` then turns the checked config into what each region's event logic needs.

The old swimmer spellings are accepted: ``[events] action = false`` / ``identity = false`` mean
``[events.tasks.action] enabled = false`` (resp. identity), and a rule without ``task`` watches
``action``. Why accept rather than reject: a daemon on a camera is configured once and left
alone; an upgrade must not stop its alerts over a renamed key. Both only work with a model that
has those tasks; with any other model the error says the new spelling.
"""

from edge.serve.events import LabelPolicy, ValuePolicy

LEGACY_EVENT_KEYS = ("action", "identity")
LEGACY_RULE_TASK = "action"
RESERVED_TYPES = ("alert",)
EMBEDDING_SUFFIX = "_embedding"


def rule_task(rule):
    """The task an alert rule watches (``action`` when the rule does not say: old configs)."""
    return rule.get("task") or LEGACY_RULE_TASK


def legacy_notes(cfg):
    """The old spellings ``cfg`` uses, each with its new spelling (logged at start-up)."""
    notes = ["events.%s is the old spelling of [events.tasks.%s] enabled = %s"
             % (old, old, "true" if cfg.events[old] else "false")
             for old in LEGACY_EVENT_KEYS if cfg.events.get(old) is not None]
    notes += ["alerts[%d] has no task; it watches %r (write task = %r)"
              % (i, LEGACY_RULE_TASK, LEGACY_RULE_TASK)
              for i, rule in enumerate(cfg.alerts) if rule.get("task") is None]
    return notes


def paired_classification(task, tasks):
    """The classification task whose identity an embedding task's gallery matches name
    (``identity_embedding`` -> ``identity``, the manifest's naming), or None."""
    name = task.name
    if task.kind != "embedding" or not name.endswith(EMBEDDING_SUFFIX):
        return None
    other = tasks.get(name[:-len(EMBEDDING_SUFFIX)])
    return other.name if other is not None and other.kind == "classification" else None


def _listing(tasks):
    return ", ".join("%s (%s)" % (t.name, t.kind) for t in tasks.values())


def model_problems(cfg, manifest):
    """Ways the config and the model directory disagree (each a message with the key path)."""
    problems = []
    window = cfg.model.get("window")
    if window is not None and window != manifest.clip_length:
        problems.append("model.window = %d but the model in %s takes clips of %d frames "
                        "(manifest clip_length); remove model.window or point model.dir at a "
                        "model built for %d" % (window, cfg.model["dir"], manifest.clip_length,
                                                window))
    tasks = {t.name: t for t in manifest.tasks}
    for name in RESERVED_TYPES:
        if name in tasks:
            problems.append("model.dir: the model in %s has a task named %r, which is also the "
                            "type of alert events; rename the task" % (cfg.model["dir"], name))
    problems += _event_problems(cfg.events, tasks)
    for i, rule in enumerate(cfg.alerts):
        problems += _rule_problems("alerts[%d]" % i, rule, tasks)
    if cfg.model.get("gallery") and not any(t.kind == "embedding" for t in manifest.tasks):
        problems.append("model.gallery is set but the model in %s has no embedding task; remove "
                        "model.gallery or use a model with one" % cfg.model["dir"])
    return problems


def _event_problems(events, tasks):
    problems = []
    for old in LEGACY_EVENT_KEYS:
        if events.get(old) is not None and old not in tasks:
            problems.append("events.%s: the model has no task %r (its tasks: %s); per-task "
                            "switches are now [events.tasks.NAME] enabled = true/false"
                            % (old, old, _listing(tasks)))
    for name, table in events["tasks"].items():
        where = "events.tasks.%s" % name
        task = tasks.get(name)
        if task is None:
            problems.append("%s: the model has no task %r (its tasks: %s)"
                            % (where, name, _listing(tasks)))
            continue
        allowed = {"classification": ("min_score",), "regression": ("min_change",),
                   "embedding": ()}[task.kind]
        for key in ("min_score", "min_change"):
            if table[key] is not None and key not in allowed:
                problems.append("%s.%s: %s is a %s task; %s" % (
                    where, key, name, task.kind,
                    "min_change applies to regression tasks" if key == "min_change" else
                    "min_score applies to classification tasks"))
        if task.kind == "regression" and table["enabled"] and table["min_change"] is None:
            problems.append("%s.min_change: required for the value events of regression task "
                            "%s (in its units, e.g. min_change = 5.0); or enabled = false"
                            % (where, name))
        paired = paired_classification(task, tasks)
        if paired is not None:
            problems.append("%s: the gallery matches of %s are published as %s events; "
                            "configure [events.tasks.%s] instead" % (where, name, paired, paired))
    return problems


def _rule_problems(where, rule, tasks):
    name = rule_task(rule)
    task = tasks.get(name)
    if task is None:
        if rule.get("task") is None:
            return ["%s.task: required key missing (the model's tasks: %s); only swimmer "
                    "models may leave it out (it then means 'action')" % (where, _listing(tasks))]
        return ["%s.task: the model has no task %r (its tasks: %s)"
                % (where, name, _listing(tasks))]
    if task.kind == "embedding":
        return ["%s.task: %s is an embedding task; rules watch classification or regression "
                "tasks (%s)" % (where, name, _listing(tasks))]
    threshold = rule.get("above") is not None or rule.get("below") is not None
    if task.kind == "regression":
        if not threshold:
            return ["%s: task %s is a regression task: give above and/or below (the rule fires "
                    "while the value is beyond them), not label" % (where, name)]
        return []
    if threshold:
        return ["%s: task %s is a classification task: give label (one of %s) and min_score, "
                "not above/below" % (where, name, ", ".join(task.labels))]
    if rule.get("label") not in task.labels:
        return ["%s.label: %r is not a label of task %s (labels: %s)"
                % (where, rule.get("label"), name, ", ".join(task.labels))]
    return []


def event_policies(events, manifest, gallery):
    """One policy per task that emits events, in the manifest's order (see
    :mod:`edge.serve.events`): classification -> label changes (with the gallery's matches for
    the task an embedding belongs to), regression -> value changes (only with a min_change),
    an embedding of its own -> gallery matches (only with a gallery)."""
    tasks = {t.name: t for t in manifest.tasks}
    owned = {paired_classification(t, tasks) for t in manifest.tasks} - {None}
    policies = []
    for task in manifest.tasks:
        table = dict(events["tasks"].get(task.name) or {"enabled": True})
        if task.name in LEGACY_EVENT_KEYS and events.get(task.name) is not None:
            table["enabled"] = events[task.name]
        if not table["enabled"]:
            continue
        debounce = table.get("debounce_windows") or events["debounce_windows"]
        if task.kind == "classification":
            min_score = table.get("min_score")
            policies.append(LabelPolicy(task.name, debounce,
                                        events["min_score"] if min_score is None else min_score,
                                        paired=task.name in owned))
        elif task.kind == "regression":
            if table.get("min_change") is not None:
                policies.append(ValuePolicy(task.name, debounce, table["min_change"]))
        elif gallery and paired_classification(task, tasks) is None:
            policies.append(LabelPolicy(task.name, debounce, None, paired=True,
                                        classifier=False))
    return policies


def describe_policies(policies, manifest):
    """What each task of the model emits, for the start-up log and ``--check-config``."""
    emits = {p.task: p.describe() for p in policies}
    words = []
    for task in manifest.tasks:
        if task.name in emits:
            words.append("%s: %s" % (task.name, emits[task.name]))
        elif task.kind != "embedding":  # off, or a regression task without min_change
            words.append("%s: no events (alert rules only)" % task.name)
    return ", ".join(words) or "none (alert rules only)"
