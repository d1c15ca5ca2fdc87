"""The accuracy half of a benchmark: which clips the target runs, its outputs, their scores.

One scoring path: the target runs the clips through :meth:`edge.runner.StreamingRunner.run_clip`
(:func:`clip_outputs`, inside ``edge.bench.device``) and the outputs are scored with
:func:`edge.metrics.score`, the function ``edgekit eval`` and ``edgekit train`` use. ``edgekit
quantize`` scores the TFLite files it writes for report.json with the same two calls
(:func:`score_model_dir`), so report.json's ``tflite`` figures and a benchmark's accuracy are
the same computation, on the workstation or on the board.

Which clips: ``--data DIR`` (every usable clip of the folder), else the test split of the run the
artifact was quantized from (``report.json`` names the run and its data folder; the split is the
one stored in the run's ``run.json``), else none (accuracy is then absent, with the reason).
Everything here is TensorFlow-free and reads the folders with :mod:`edge.data`.
"""

import json
import math
import os
from dataclasses import dataclass
from typing import Dict, List, Optional

import numpy as np

from edge.errors import EdgekitError


@dataclass
class EvalSet:
    key: tuple
    tasks: list               # edge.metrics.ScoredTask per scored task
    x: np.ndarray             # uint8 (N, T, H, W, 3) RGB
    targets: Dict[str, np.ndarray]
    names: List[str]
    source: str


def _report(model_dir):
    path = os.path.join(model_dir, "report.json")
    if not os.path.isfile(path):
        return None
    try:
        with open(path) as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


def _load(manifest, data_dir, stride=1):
    from edge.data.labelled import load_labelled

    labels = {t.name: list(t.labels) for t in manifest.tasks if t.kind == "classification"}
    return load_labelled(manifest.name, data_dir, manifest.clip_length,
                         (manifest.input.height, manifest.input.width), labels, stride)


def resolve(manifest, model_dir, data_dir=None, max_clips=None, cache=None):
    """(EvalSet, None) or (None, reason why there is no eval set)."""
    from edge.metrics import manifest_tasks

    cache = {} if cache is None else cache
    tasks = manifest_tasks(manifest)
    shape = (manifest.name, manifest.clip_length, manifest.input.height, manifest.input.width)
    if data_dir:
        data_dir = os.path.abspath(data_dir)
        if not os.path.isdir(data_dir):
            raise EdgekitError("--data %s is not a folder; give the clip folder to evaluate on"
                               % data_dir)
        key = shape + (data_dir, None, max_clips)
        if key not in cache:
            data = _load(manifest, data_dir)
            cache[key] = _limit(EvalSet(key, tasks, data.x, data.targets, data.names,
                                        "all clips of %s" % data_dir), max_clips)
        return cache[key], None
    report = _report(model_dir)
    if not report or not report.get("data") or not report.get("run"):
        return None, "no --data and no report.json naming the run's data in %s" % model_dir
    from edge.data.labelled import read_split

    split = read_split(report["run"])
    if split is None:
        return None, "the run %s of report.json is unreadable; pass --data" % report["run"]
    test, stride = split
    if not test or not os.path.isdir(report["data"]):
        return None, "run %s has no test split or its data folder %s is gone; pass --data" % (
            report["run"], report["data"])
    key = shape + (os.path.abspath(report["data"]), tuple(test), max_clips)
    if key not in cache:
        data = _load(manifest, report["data"], stride).select(test)
        cache[key] = _limit(EvalSet(key, tasks, data.x, data.targets, data.names,
                                    "test split of run %s (%s)" % (report["run"],
                                                                   report["data"])), max_clips)
    return cache[key], None


def _limit(evalset, max_clips):
    if max_clips and len(evalset.names) > max_clips:
        n = int(max_clips)
        evalset.x = evalset.x[:n]
        evalset.targets = {k: v[:n] for k, v in evalset.targets.items()}
        evalset.names = evalset.names[:n]
        evalset.source += " (first %d clips)" % n
    return evalset


def save(evalset, path):
    np.savez(path, x=evalset.x)
    return path


def clip_outputs(runner, clips):
    """Head outputs (dequantized, float) per clip, keyed by output name: {name: [[...], ...]}.

    Every clip goes through :meth:`StreamingRunner.run_clip`, i.e. the preprocessing, frame
    model, ring (with its requantization) and head the camera runs. Plain lists, so the target
    can send them back as JSON.
    """
    outputs = {}
    for clip in clips:
        result = runner.run_clip(clip, source_order="RGB")
        if result is None:
            raise EdgekitError("clip of %d frames gave no decision (model T=%d)"
                               % (len(clip), runner.clip_length))
        for name, task in result.tasks.items():
            outputs.setdefault(name, []).append([float(v) for v in task.values])
    return outputs


def as_arrays(tasks, outputs, count):
    """{name: float32 array} of :func:`clip_outputs`, checked to cover ``tasks`` x ``count``."""
    arrays = {name: np.asarray(values, dtype=np.float32) for name, values in outputs.items()}
    for task in tasks:
        if task.name not in arrays:
            raise EdgekitError("the target returned no output %r (it returned %s)"
                               % (task.name, ", ".join(sorted(arrays))))
        if len(arrays[task.name]) != count:
            raise EdgekitError("the target returned %d outputs for %d eval clips"
                               % (len(arrays[task.name]), count))
    return arrays


def score_outputs(evalset, outputs):
    """Per-task metrics of the target's outputs ({output: [[...], ...]}), JSON-safe."""
    from edge.metrics import score

    arrays = as_arrays(evalset.tasks, outputs, len(evalset.names))
    return json_safe(score(evalset.tasks, arrays, evalset.targets))


def score_model_dir(model_dir, clips, targets, threads=2):
    """Per-task metrics of a model directory on labelled clips, run as the camera runs them.

    What ``edgekit quantize`` puts in report.json as ``metrics.tflite``: the same
    :func:`clip_outputs` + :func:`edge.metrics.score` as a benchmark (not JSON-made-safe, as the
    Keras figures beside it are not).
    """
    from edge.metrics import manifest_tasks, score
    from edge.runner import StreamingRunner

    runner = StreamingRunner(model_dir, device="cpu", threads=threads, source_order="RGB")
    tasks = manifest_tasks(runner.manifest)
    arrays = as_arrays(tasks, clip_outputs(runner, clips), len(clips))
    return score(tasks, arrays, targets)


def json_safe(value):
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, np.generic):
        return json_safe(value.item())
    return value


def headline(accuracy: Optional[dict]):
    """{task: accuracy or MAE} for tables; {} without accuracy."""
    if not accuracy:
        return {}
    return {name: (m.get("accuracy") if "accuracy" in m else m.get("mae"))
            for name, m in accuracy.items()}
