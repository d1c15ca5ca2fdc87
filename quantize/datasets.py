"""From a data folder to arrays and per-task targets for a model config (no TensorFlow).

Both instances end up in the same shape: ``x`` uint8 (N, T, H, W, 3) RGB clips (T = 1 for faces)
and ``targets`` keyed by task name, so training, evaluation and int8 calibration share one path.
"""

import os
from dataclasses import dataclass, field
from typing import Dict, List, Tuple

import numpy as np

from edge.errors import EdgekitError


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


def data_labels(task, data_dir):
    """Class names the folder declares: swim -> (actions, identities); face -> fixed UTKFace labels."""
    if task == "swim":
        from quantize.data.clips import ClipLabels

        labels = ClipLabels.load(data_dir)
        return {"action": list(labels.actions), "identity": list(labels.identities)}
    from quantize.data.utkface import GENDERS, RACES

    return {"gender": list(GENDERS), "race": list(RACES)}


def load_task_data(config, data_dir, stride=1):
    """Read every usable sample of ``data_dir`` for ``config`` (clips for swim, images for face)."""
    if not os.path.isdir(data_dir):
        raise EdgekitError("data folder %s does not exist" % data_dir)
    if config.name == "swim":
        from quantize.data.clips import load_clips, scan_clip_folder

        index = scan_clip_folder(data_dir)
        declared = data_labels("swim", data_dir)
        for task in ("action", "identity"):
            if declared[task] != list(config.task(task).labels):
                raise EdgekitError("the labels of %s (%s: %s) differ from the model's (%s); use the "
                                   "data the model was trained on or retrain"
                                   % (data_dir, task, declared[task], config.task(task).labels))
        arrays = load_clips(index, config.clip_length, stride, (config.height, config.width))
        targets = {"action": arrays.action.astype(np.int32), "identity": arrays.identity.astype(np.int32)}
        strata = arrays.action.astype(np.int64) * len(declared["identity"]) + arrays.identity
        skipped = list(index.skipped) + list(arrays.skipped)
    elif config.name == "face":
        from quantize.data.utkface import load_faces, scan_utkface

        index = scan_utkface(data_dir)
        arrays = load_faces(index, (config.height, config.width))
        targets = {"age": arrays.age.astype(np.float32), "gender": arrays.gender.astype(np.int32),
                   "race": arrays.race.astype(np.int32)}
        strata = arrays.gender.astype(np.int64) * 5 + arrays.race
        skipped = [(name, "malformed UTKFace name") for name in index.malformed] + list(arrays.skipped)
    else:
        raise EdgekitError("unknown task %r; choose swim or face" % config.name)
    names = [os.path.basename(p) for p in arrays.paths]
    return TaskData(arrays.x, targets, names, np.asarray(strata), skipped)


def split_task_data(data, seed=0, fractions=(0.7, 0.15, 0.15)):
    """Deterministic stratified train/val/test split, returned as {split: file names}."""
    from quantize.data.splits import split_indices

    train, val, test = split_indices(data.strata, fractions=fractions, seed=seed)
    return {"train": [data.names[i] for i in train], "val": [data.names[i] for i in val],
            "test": [data.names[i] for i in test]}
