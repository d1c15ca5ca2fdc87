"""A data folder as arrays and per-task targets, for either instance (no TensorFlow).

Both instances end up in the same shape: ``x`` uint8 (N, T, H, W, 3) RGB clips (T = 1 for faces)
and ``targets`` keyed by task name, so training, evaluation, int8 calibration and the bench's
accuracy on a board share one loader. It takes plain values (instance, T, size, the class names
a model expects) rather than a model config, so the device side can call it with what a
manifest says and the host side with what a ``ModelConfig`` says.
"""

import os
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import numpy as np

from edge.errors import EdgekitError

INSTANCES = ("swim", "face")


@dataclass
class TaskData:
    x: np.ndarray
    targets: Dict[str, np.ndarray]
    names: List[str]  # file names, the identity of a sample across runs (splits are stored by name)
    strata: np.ndarray  # what splits are stratified by
    skipped: List[Tuple[str, str]] = field(default_factory=list)

    def __len__(self):
        return len(self.names)

    def subset(self, indices):
        indices = np.asarray(indices, dtype=np.int64)
        return TaskData(self.x[indices], {k: v[indices] for k, v in self.targets.items()},
                        [self.names[i] for i in indices], self.strata[indices], list(self.skipped))

    def select(self, names):
        """The samples named ``names`` (a stored split); unknown names are an error."""
        position = {name: i for i, name in enumerate(self.names)}
        missing = [n for n in names if n not in position]
        if missing:
            raise EdgekitError("%d samples of the stored split are missing from the data folder "
                               "(e.g. %s); was the folder changed since training?" % (len(missing), missing[0]))
        return self.subset([position[n] for n in names])


def load_labelled(instance, data_dir, clip_length, size, labels=None, stride=1):
    """Every usable sample of ``data_dir`` for ``instance`` (clips for swim, images for face).

    ``size`` is (height, width); ``labels`` ({task: class names}, optional) are the swim classes
    the model was trained with: a folder whose labels.json differs is refused, since its class
    indices would mean other classes.
    """
    if not os.path.isdir(data_dir):
        raise EdgekitError("data folder %s does not exist" % data_dir)
    if instance == "swim":
        return _load_swim(data_dir, clip_length, size, labels or {}, stride)
    if instance == "face":
        return _load_face(data_dir, size)
    raise EdgekitError("unknown task %r; choose %s" % (instance, " or ".join(INSTANCES)))


def _load_swim(data_dir, clip_length, size, labels, stride):
    from edge.data.clips import load_clips, scan_clip_folder

    index = scan_clip_folder(data_dir)
    declared = {"action": list(index.labels.actions), "identity": list(index.labels.identities)}
    for task in ("action", "identity"):
        if task in labels and declared[task] != list(labels[task]):
            raise EdgekitError("the labels of %s (%s: %s) differ from the model's (%s); use the "
                               "data the model was trained on or retrain"
                               % (data_dir, task, declared[task], list(labels[task])))
    arrays = load_clips(index, clip_length, stride, tuple(size))
    targets = {"action": arrays.action.astype(np.int32), "identity": arrays.identity.astype(np.int32)}
    strata = arrays.action.astype(np.int64) * len(declared["identity"]) + arrays.identity
    skipped = list(index.skipped) + list(arrays.skipped)
    return _task_data(arrays, targets, strata, skipped)


def _load_face(data_dir, size):
    from edge.data.utkface import load_faces, scan_utkface

    index = scan_utkface(data_dir)
    arrays = load_faces(index, tuple(size))
    targets = {"age": arrays.age.astype(np.float32), "gender": arrays.gender.astype(np.int32),
               "race": arrays.race.astype(np.int32)}
    strata = arrays.gender.astype(np.int64) * 5 + arrays.race
    skipped = [(name, "malformed UTKFace name") for name in index.malformed] + list(arrays.skipped)
    return _task_data(arrays, targets, strata, skipped)


def _task_data(arrays, targets, strata, skipped):
    names = [os.path.basename(p) for p in arrays.paths]
    return TaskData(arrays.x, targets, names, np.asarray(strata), skipped)


def read_split(run_dir, split="test") -> Optional[Tuple[List[str], int]]:
    """(file names of ``split``, clip stride) stored in a run's ``run.json``; None if unreadable.

    ``run.json`` is written by ``quantize.runs.write_run_info``; only these two keys are read
    here, so a board can evaluate on a run's test split without the host package.
    """
    import json

    try:
        with open(os.path.join(run_dir, "run.json")) as handle:
            meta = json.load(handle)
        return list(meta.get("splits", {}).get(split) or []), int(meta.get("clip_stride", 1))
    except (OSError, ValueError, TypeError, AttributeError):
        return None
