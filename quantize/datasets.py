"""From a data folder to arrays and per-task targets for a model config (no TensorFlow).

The loading is :mod:`edge.data.labelled` (the bench on a board reads the same folders); this
module adapts it to a ``ModelConfig`` and adds what only training needs (declared labels, splits).
"""

from edge.data.labelled import TaskData, load_labelled  # noqa: F401 (TaskData: re-exported)


def data_labels(task, data_dir):
    """Class names the folder declares: swim -> (actions, identities); face -> fixed UTKFace labels."""
    if task == "swim":
        from edge.data.clips import ClipLabels

        labels = ClipLabels.load(data_dir)
        return {"action": list(labels.actions), "identity": list(labels.identities)}
    from edge.data.utkface import GENDERS, RACES

    return {"gender": list(GENDERS), "race": list(RACES)}


def load_task_data(config, data_dir, stride=1):
    """Read every usable sample of ``data_dir`` for ``config`` (clips for swim, images for face).

    The loader itself is :func:`edge.data.labelled.load_labelled`, shared with the bench on a
    board; this passes it what the config says.
    """
    labels = {t.name: list(t.labels) for t in config.tasks if t.kind == "classification"}
    return load_labelled(config.name, data_dir, config.clip_length, (config.height, config.width),
                         labels, stride)


def split_task_data(data, seed=0, fractions=(0.7, 0.15, 0.15)):
    """Deterministic stratified train/val/test split, returned as {split: file names}."""
    from quantize.data.splits import split_indices

    train, val, test = split_indices(data.strata, fractions=fractions, seed=seed)
    return {"train": [data.names[i] for i in train], "val": [data.names[i] for i in val],
            "test": [data.names[i] for i in test]}
