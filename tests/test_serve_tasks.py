"""Events and alert rules follow the model's tasks: the generic rules, on the face instance's tasks.

Real objects throughout: configs go through :func:`parse_config`, the manifest is the real
:class:`edge.manifest.Manifest` record with the face instance's tasks, window results are the
runner's own :class:`WindowResult` / :class:`TaskOutput` records made by
:func:`edge.results.decode_task` from head outputs. The end-to-end face runs (a trained tiny
model, a real video, mosquitto) are in test_serve_daemon.py and test_edge_cli.py.
"""

import tracemalloc

import numpy as np
import pytest

from edge.errors import EdgekitError
from edge.gallery import Gallery
from edge.manifest import InputSpec, Manifest, TaskSpec
from edge.results import WindowResult, decode_task
from edge.serve.config import parse_config
from edge.serve.events import AlertRule, EventFactory, RegionEvents
from edge.serve.model_check import event_policies, model_problems, rule_task

GENDERS = ["male", "female"]
RACES = ["white", "black", "asian", "indian", "others"]


def face_manifest(extra=()):
    tasks = [TaskSpec("age", "regression", [], "age"),
             TaskSpec("gender", "classification", GENDERS, "gender"),
             TaskSpec("race", "classification", RACES, "race")] + list(extra)
    return Manifest("face", "tiny", "ptq", "", InputSpec(32, 32), 1, 1, [4, 4, 16], tasks, {})


def config(events=None, alerts=None):
    raw = {"model": {"dir": "/models/face"}, "cameras": {"door": {"source": "0"}},
           "outputs": {"jsonl": {"path": "/tmp/events.jsonl"}}}
    if events is not None:
        raw["events"] = events
    if alerts is not None:
        raw["alerts"] = alerts
    return parse_config(raw, "serve.toml")


def face_window(i, age, gender, race, gender_p=0.9, race_margin=1.5, embedding=None,
                match=None):
    """A window as the runner makes it: head outputs decoded by decode_task."""
    manifest = face_manifest()
    by_name = {t.name: t for t in manifest.tasks}
    g = np.full(2, 1.0 - gender_p, np.float32)
    g[GENDERS.index(gender)] = gender_p
    r = np.full(5, -1.0, np.float32)
    r[RACES.index(race)] = race_margin
    tasks = {"age": decode_task(by_name["age"], np.array([age], np.float32)),
             "gender": decode_task(by_name["gender"], g),
             "race": decode_task(by_name["race"], r)}
    if embedding is not None:
        tasks["face_embedding"] = decode_task(
            TaskSpec("face_embedding", "embedding", [], "face_embedding"), embedding)
    return WindowResult(0, None, i, i, i / 15.0, i / 15.0, tasks, match)


def region(cfg, manifest=None, gallery=False, clock=None):
    manifest = manifest or face_manifest()
    assert model_problems(cfg, manifest) == []
    kinds = {t.name: t.kind for t in manifest.tasks}
    rules = [AlertRule(r, kinds[rule_task(r)], rule_task(r)) for r in cfg.alerts]
    return RegionEvents("door", "face", EventFactory("run1"),
                        event_policies(cfg.events, manifest, gallery), rules,
                        clock=clock or (lambda: 0.0))


def feed(events, windows):
    out = []
    for i, w in enumerate(windows):
        events.on_window(w, 1000.0 + i, out)
    return out


def test_decode_task_gives_each_kind_what_it_needs():
    age, gender, race = face_manifest().tasks
    out = decode_task(age, np.array([31.5], np.float32))
    assert (out.kind, out.value, out.label) == ("regression", 31.5, None)
    assert out.to_dict() == {"kind": "regression", "value": 31.5}
    out = decode_task(race, np.array([-0.2, 1.4, -1.0, 0.1, -0.9], np.float32))
    assert (out.label, out.score) == ("black", pytest.approx(1.4))  # a margin, not a probability
    assert out.to_dict()["scores"]["white"] == pytest.approx(-0.2)
    vector = np.array([0.6, 0.8], np.float32)
    out = decode_task(TaskSpec("e", "embedding", [], "e"), vector)
    assert out.vector is vector and out.value is None and out.label is None


def test_label_events_are_debounced_per_task():
    cfg = config({"debounce_windows": 1, "tasks": {"race": {"debounce_windows": 3}}})
    events = region(cfg)
    seq = [("male", "asian"), ("female", "asian"), ("female", "white"), ("female", "white"),
           ("male", "white")]
    out = feed(events, [face_window(i, 30.0, g, r) for i, (g, r) in enumerate(seq)])
    got = [(e["type"], e["label"], e["previous"], e["frames"][0]) for e in out]
    assert got == [("gender", "male", None, 0), ("gender", "female", "male", 1),
                   ("gender", "male", "female", 4), ("race", "white", None, 4)]
    assert out[0]["scores"] == {"male": pytest.approx(0.9), "female": pytest.approx(0.1)}
    assert "value" not in out[0] and "source" not in out[0]


def test_min_score_per_task_accepts_hinge_margins():
    cfg = config({"debounce_windows": 1, "tasks": {"race": {"min_score": 1.0},
                                                   "gender": {"enabled": False}}})
    events = region(cfg)
    out = feed(events, [face_window(0, 30.0, "male", "asian", race_margin=0.5),   # no vote
                        face_window(1, 30.0, "male", "indian", race_margin=1.2)])
    assert [(e["type"], e["label"]) for e in out] == [("race", "indian")]


def test_age_value_events_need_min_change_and_are_debounced():
    cfg = config({"debounce_windows": 2, "tasks": {"age": {"min_change": 5.0},
                                                   "gender": {"enabled": False},
                                                   "race": {"enabled": False}}})
    events = region(cfg)
    ages = [30.0, 31.0, 33.0, 36.0, 36.5, 37.0, 37.5, 20.0, 36.0, 21.0, 20.5]
    out = feed(events, [face_window(i, a, "male", "asian") for i, a in enumerate(ages)])
    assert [(e["type"], e["value"], e["previous"], e["frames"][0]) for e in out] == [
        ("age", 31.0, None, 1),    # the first value, once it held 2 windows
        ("age", 37.0, 31.0, 5),    # 36 moved by 5, not more; 36.5 and 37 did
        ("age", 20.5, 37.0, 10)]   # 20 alone (then 36, back near 37) did not count
    assert out[0]["min_change"] == 5.0
    # without min_change: no value events at all (age still drives rules)
    quiet = region(config({"tasks": {"gender": {"enabled": False}, "race": {"enabled": False}}}))
    assert feed(quiet, [face_window(i, a, "male", "asian") for i, a in enumerate(ages)]) == []


@pytest.mark.parametrize("rule, ages, fired", [
    ({"below": 16.0}, [20, 15, 14, 13, 12, 17, 15, 14], [2, 7]),
    ({"above": 60.0}, [61, 62, 59, 70, 71, 72, 73], [1, 4]),
    ({"below": 16.0, "above": 60.0}, [10, 70, 30, 15, 14], [1, 4]),
])
def test_regression_rules_fire_beyond_their_threshold_for_consecutive_windows(rule, ages, fired):
    now = [0.0]
    table = dict(rule, name="r", task="age", consecutive=2, cooldown_s=10.0)
    events = region(config({"tasks": {"gender": {"enabled": False}, "race": {"enabled": False}}},
                           [table]), clock=lambda: now[0])
    out = []
    for i, age in enumerate(ages):
        now[0] = 4.0 * i  # 4 s per window: the 10 s cooldown spans two windows
        events.on_window(face_window(i, float(age), "male", "asian"), 1000.0 + i, out)
    assert [e["frames"][0] for e in out] == fired
    event = out[0]
    assert event["type"] == "alert" and event["task"] == "age" and event["rule"] == "r"
    assert event["value"] == float(ages[fired[0]]) and event["windows"] >= 2
    assert {k: event[k] for k in ("above", "below") if k in event} == rule
    assert "label" not in event and "min_score" not in event


def test_regression_rule_cooldown_then_fires_again():
    now = [0.0]
    rule = {"name": "minor", "task": "age", "below": 16.0, "consecutive": 1, "cooldown_s": 60.0}
    events = region(config({"tasks": {"gender": {"enabled": False}, "race": {"enabled": False}}},
                           [rule]), clock=lambda: now[0])
    out = feed(events, [face_window(i, 12.0, "male", "asian") for i in range(3)])
    assert len(out) == 1
    now[0] = 61.0
    out = feed(events, [face_window(3, 12.0, "male", "asian")])
    assert len(out) == 1 and out[0]["windows"] == 4


def test_classification_rule_on_a_face_task():
    rule = {"name": "f", "task": "gender", "label": "female", "min_score": 0.8,
            "consecutive": 2, "cooldown_s": 0.0}
    events = region(config({"tasks": {"gender": {"enabled": False}, "race": {"enabled": False}}},
                           [rule]))
    out = feed(events, [face_window(0, 30.0, "female", "asian", gender_p=0.9),
                        face_window(1, 30.0, "female", "asian", gender_p=0.7),
                        face_window(2, 30.0, "female", "asian", gender_p=0.9),
                        face_window(3, 30.0, "female", "asian", gender_p=0.95)])
    assert [(e["type"], e["label"], e["frames"][0]) for e in out] == [("alert", "female", 3)]
    assert out[0]["scores"]["female"] == pytest.approx(0.95) and out[0]["min_score"] == 0.8


def test_an_embedding_of_its_own_publishes_gallery_matches():
    manifest = face_manifest([TaskSpec("face_embedding", "embedding", [], "face_embedding")])
    gallery = Gallery.from_samples([("ana", np.array([1.0, 0.0], np.float32)),
                                    ("ben", np.array([0.0, 1.0], np.float32))], threshold=0.9)
    cfg = config({"debounce_windows": 1, "tasks": {"gender": {"enabled": False},
                                                   "race": {"enabled": False}}})
    events = region(cfg, manifest, gallery=True)
    out = []
    for i, vector in enumerate(([1.0, 0.0], [0.6, 0.8], [0.0, 1.0])):
        vector = np.array(vector, np.float32)
        events.on_window(face_window(i, 30.0, "male", "asian", embedding=vector,
                                     match=gallery.match(vector)), 0.0, out)
    assert [(e["type"], e["label"], e["source"]) for e in out] == [
        ("face_embedding", "ana", "gallery"), ("face_embedding", "unknown", "gallery"),
        ("face_embedding", "ben", "gallery")]
    assert out[1]["nearest"] == "ben" and out[1]["similarity"] == pytest.approx(0.8)
    # no gallery: a vector alone is no event
    assert not region(cfg, manifest).policies


def test_steady_windows_allocate_nothing():
    cfg = config({"tasks": {"age": {"min_change": 5.0}}},
                 [{"name": "minor", "task": "age", "below": 16.0, "consecutive": 3},
                  {"name": "f", "task": "gender", "label": "female"}])
    events = region(cfg)
    window = face_window(0, 30.0, "male", "asian")
    out = []
    for _ in range(5):
        events.on_window(window, 0.0, out)
    assert out  # the first labels and value went out; from now on nothing changes
    del out[:]
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        for _ in range(500):
            events.on_window(window, 0.0, out)
        after, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert out == [] and after - before < 512 and peak - before < 2048


# -- config errors, with key paths ----------------------------------------------------------------

@pytest.mark.parametrize("events, alerts, message", [
    ({"tasks": {"age": {"min_chnage": 1}}}, None, "events.tasks.age.min_chnage: unknown key"),
    ({"tasks": {"age": 3}}, None, "events.tasks.age: must be a table"),
    ({"tasks": {"age": {"min_change": -1}}}, None, "events.tasks.age.min_change: must be between"),
    ({"action": False, "tasks": {"action": {"enabled": True}}}, None,
     "events.action: the old spelling of [events.tasks.action] enabled; give one of them"),
    (None, [{"name": "a", "task": "age", "below": 16, "label": "x"}],
     "alerts[0]: label is for classification rules, above/below for regression rules"),
    (None, [{"name": "a", "task": "age", "below": 16, "min_score": 0.5}],
     "alerts[0].min_score: only for classification rules"),
    (None, [{"name": "a", "task": "age", "below": 60, "above": 16}],
     "alerts[0]: with both, below (60.0) must be less than above (16.0)"),
    (None, [{"name": "a", "task": "age"}], "alerts[0].label: required key missing"),
    (None, [{"name": "a", "task": "age", "below": "16"}], "alerts[0].below: must be a number"),
])
def test_config_shape_errors_name_the_key(events, alerts, message):
    with pytest.raises(EdgekitError) as info:
        config(events, alerts)
    assert message in str(info.value)


@pytest.mark.parametrize("events, alerts, message", [
    (None, [{"name": "a", "task": "mood", "label": "happy"}],
     "alerts[0].task: the model has no task 'mood' (its tasks: age (regression), gender "
     "(classification), race (classification))"),
    (None, [{"name": "a", "label": "drowning"}],
     "alerts[0].task: required key missing (the model's tasks: age (regression)"),
    (None, [{"name": "a", "task": "gender", "label": "other"}],
     "alerts[0].label: 'other' is not a label of task gender (labels: male, female)"),
    (None, [{"name": "a", "task": "age", "label": "old"}],
     "alerts[0]: task age is a regression task: give above and/or below"),
    (None, [{"name": "a", "task": "race", "above": 0.5}],
     "alerts[0]: task race is a classification task: give label (one of white, black"),
    ({"action": True}, None,
     "events.action: the model has no task 'action' (its tasks: age (regression)"),
    ({"tasks": {"mood": {}}}, None, "events.tasks.mood: the model has no task 'mood'"),
    ({"tasks": {"age": {"debounce_windows": 3}}}, None,
     "events.tasks.age.min_change: required for the value events of regression task age"),
    ({"tasks": {"gender": {"min_change": 1.0}}}, None,
     "events.tasks.gender.min_change: gender is a classification task"),
    ({"tasks": {"age": {"min_change": 1.0, "min_score": 0.5}}}, None,
     "events.tasks.age.min_score: age is a regression task"),
])
def test_model_problems_name_the_key_and_the_models_tasks(events, alerts, message):
    problems = model_problems(config(events, alerts), face_manifest())
    assert any(message in p for p in problems), problems


def test_disabling_a_regression_task_needs_no_min_change():
    assert model_problems(config({"tasks": {"age": {"enabled": False}}}), face_manifest()) == []


def test_swimmer_gallery_table_points_at_the_classification_task():
    from tests.test_serve_units import swim_manifest

    problems = model_problems(config({"tasks": {"identity_embedding": {}}}), swim_manifest())
    assert any("events.tasks.identity_embedding: the gallery matches of identity_embedding are "
               "published as identity events" in p for p in problems), problems
    # the old swimmer spellings work with a swimmer model
    cfg = config({"action": False}, [{"name": "a", "label": "drowning"}])
    assert model_problems(cfg, swim_manifest()) == []
    assert [p.task for p in event_policies(cfg.events, swim_manifest(), True)] == ["identity"]
    assert rule_task(cfg.alerts[0]) == "action"


def test_old_spellings_are_noted_with_the_new_one():
    from edge.serve.model_check import legacy_notes

    cfg = config({"identity": False}, [{"name": "a", "label": "drowning"},
                                       {"name": "b", "task": "age", "below": 3}])
    assert legacy_notes(cfg) == [
        "events.identity is the old spelling of [events.tasks.identity] enabled = false",
        "alerts[0] has no task; it watches 'action' (write task = 'action')"]
