"""The eval set of a benchmark: which clips the target runs, and scoring its outputs on the host.

The target only runs the models (``edge.bench.device``) and returns the head outputs per clip; the
host scores them with :func:`quantize.metrics.score`, the function ``edgekit eval`` and
``edgekit quantize`` use, so a benchmark's accuracy is comparable with theirs.

Which clips: ``--data DIR`` (every usable clip of the folder), else the test split of the run the
artifact was quantized from (``report.json`` names the run and its data folder; the split is the
one stored in the run), else none (accuracy is then absent, with the reason).
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
    config: object            # quantize.config.ModelConfig (tasks for scoring)
    x: np.ndarray             # uint8 (N, T, H, W, 3) RGB
    targets: Dict[str, np.ndarray]
    names: List[str]
    source: str


def config_from_manifest(manifest):
    """A :class:`quantize.config.ModelConfig` with the manifest's tasks (for scoring only)."""
    from quantize.config import ModelConfig, TaskSpec

    outputs = {t.name for t in manifest.tasks}
    tasks = []
    for task in manifest.tasks:
        if task.kind == "classification":
            tasks.append(TaskSpec(task.name, "classification", list(task.labels), "crossentropy",
                                  embedding=(task.name + "_embedding") in outputs))
        elif task.kind == "regression":
            tasks.append(TaskSpec(task.name, "regression", ["value"], "mse"))
    return ModelConfig(manifest.name, manifest.backbone, manifest.clip_length,
                       manifest.input.height, manifest.input.width, tasks)


def _report(model_dir):
    path = os.path.join(model_dir, "report.json")
    if not os.path.isfile(path):
        return None
    try:
        with open(path) as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


def resolve(manifest, model_dir, data_dir=None, max_clips=None, cache=None):
    """(EvalSet, None) or (None, reason why there is no eval set)."""
    from quantize.datasets import load_task_data

    cache = {} if cache is None else cache
    config = config_from_manifest(manifest)
    shape = (manifest.name, manifest.clip_length, manifest.input.height, manifest.input.width)
    if data_dir:
        data_dir = os.path.abspath(data_dir)
        if not os.path.isdir(data_dir):
            raise EdgekitError("--data %s is not a folder; give the clip folder to evaluate on"
                               % data_dir)
        key = shape + (data_dir, None, max_clips)
        if key not in cache:
            data = load_task_data(config, data_dir)
            cache[key] = _limit(EvalSet(key, config, data.x, data.targets, data.names,
                                        "all clips of %s" % data_dir), max_clips)
        return cache[key], None
    report = _report(model_dir)
    if not report or not report.get("data") or not report.get("run"):
        return None, "no --data and no report.json naming the run's data in %s" % model_dir
    from quantize.runs import read_run
    try:
        info = read_run(report["run"])
    except EdgekitError as exc:
        return None, "the run of report.json is unreadable (%s); pass --data" % exc
    test = info.splits.get("test") or []
    if not test or not os.path.isdir(report["data"]):
        return None, "run %s has no test split or its data folder %s is gone; pass --data" % (
            report["run"], report["data"])
    key = shape + (os.path.abspath(report["data"]), tuple(test), max_clips)
    if key not in cache:
        data = load_task_data(config, report["data"], info.clip_stride).select(test)
        cache[key] = _limit(EvalSet(key, config, data.x, data.targets, data.names,
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


def score_outputs(evalset, outputs):
    """Per-task metrics of the target's outputs ({output: [[...], ...]}), JSON-safe."""
    from quantize.metrics import score

    arrays = {name: np.asarray(values, dtype=np.float32) for name, values in outputs.items()}
    for task in evalset.config.tasks:
        if task.name not in arrays:
            raise EdgekitError("the target returned no output %r (it returned %s)"
                               % (task.name, ", ".join(sorted(arrays))))
        if len(arrays[task.name]) != len(evalset.names):
            raise EdgekitError("the target returned %d outputs for %d eval clips"
                               % (len(arrays[task.name]), len(evalset.names)))
    return json_safe(score(evalset.config, arrays, evalset.targets))


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
