"""``edgekit train``: end-to-end multi-task training of an MTDNN into a run directory.

Each task is trained with the seed's loss (cross-entropy, squared hinge for race, MSE for age)
weighted by its :class:`~quantize.config.TaskSpec` weight. Adam, early stopping on the validation
loss (best weights kept), learning-rate decay on plateau, a checkpoint of weights *and* optimizer
after every epoch so ``--resume`` continues where an interrupted run stopped. The split is drawn
once (seeded, stratified) and stored by file name in the run, so evaluation and calibration later
use exactly the held-out clips the model never saw.
"""

import csv
import json
import os
import time

import click
import numpy as np

from edge.atomic import atomic_path, write_json
from edge.errors import EdgekitError
from quantize.backbones import get_backbone
from quantize.config import face_config, swim_config
from quantize.datasets import data_labels, load_task_data, split_task_data
from quantize.runs import RunInfo, read_run, write_run_info


def parse_size(text):
    """'100x100' or '100' -> (100, 100)."""
    try:
        parts = [int(p) for p in str(text).lower().split("x")]
    except ValueError:
        parts = []
    if len(parts) == 1:
        parts = parts * 2
    if len(parts) != 2 or min(parts) < 16:
        raise EdgekitError("size must look like HxW (e.g. 100x100), each at least 16; got %r" % text)
    return tuple(parts)


def make_config(task, data_dir, backbone, size, clip_length, head_size, weights, backbone_options):
    if task == "swim":
        labels = data_labels("swim", data_dir)
        return swim_config(backbone, size or (100, 100), clip_length, labels["action"],
                           labels["identity"], head_size, weights, backbone_options)
    if task == "face":
        return face_config(backbone, size or (198, 198), head_size, weights, backbone_options)
    raise EdgekitError("unknown task %r; choose swim or face" % task)


def training_targets(config, targets):
    """Targets in the form each loss wants: class ids, ±1 one-hot for squared hinge, (N, 1) floats."""
    out = {}
    for task in config.tasks:
        y = targets[task.name]
        if task.loss == "squared_hinge":
            out[task.name] = np.eye(task.num_outputs, dtype=np.float32)[y]
        elif task.kind == "regression":
            out[task.name] = y.astype(np.float32).reshape(-1, 1)
        else:
            out[task.name] = y.astype(np.int32)
    return out


def compile_model(model, config, learning_rate):
    from quantize.tf_compat import keras

    losses, weights, metrics = {}, {}, {}
    for task in config.tasks:
        losses[task.name] = {
            "crossentropy": keras.losses.SparseCategoricalCrossentropy(),
            "squared_hinge": keras.losses.SquaredHinge(),
            "mse": keras.losses.MeanSquaredError(),
        }[task.loss]
        weights[task.name] = task.weight
        if task.kind == "classification":
            metrics[task.name] = [keras.metrics.SparseCategoricalAccuracy(name="acc")
                                  if task.loss == "crossentropy" else keras.metrics.CategoricalAccuracy(name="acc")]
        else:
            metrics[task.name] = [keras.metrics.MeanAbsoluteError(name="mae")]
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=losses, loss_weights=weights,
                  metrics=metrics)


def _versions():
    import tensorflow as tf
    import tf_keras

    return {"edgekit": __import__("edge").__version__, "tensorflow": tf.__version__,
            "tf_keras": tf_keras.__version__}


class _Checkpointer:
    """Saves weights + optimizer every epoch and remembers which epoch finished, for --resume."""

    def __init__(self, run_dir, model):
        from quantize.tf_compat import tf

        self.directory = os.path.join(run_dir, "checkpoints")
        self.state_path = os.path.join(self.directory, "state.json")
        self.checkpoint = tf.train.Checkpoint(model=model, optimizer=model.optimizer)
        self.manager = tf.train.CheckpointManager(self.checkpoint, self.directory, max_to_keep=1)

    def restore(self):
        if not os.path.isfile(self.state_path) or self.manager.latest_checkpoint is None:
            return None
        with open(self.state_path) as handle:
            state = json.load(handle)
        self.checkpoint.restore(self.manager.latest_checkpoint).expect_partial()
        return state

    def callback(self, early_stopping, plateau):
        from quantize.tf_compat import keras

        def on_epoch_end(epoch, logs):
            self.manager.save(checkpoint_number=epoch + 1)
            write_json(self.state_path, {
                "epochs_done": epoch + 1,
                "best": float(early_stopping.best), "wait": int(early_stopping.wait),
                "plateau_best": float(plateau.best), "plateau_wait": int(plateau.wait),
            })

        return keras.callbacks.LambdaCallback(on_epoch_end=on_epoch_end)


def _fit(clip, out, info, train_ds, val_ds, epochs, patience, resume, verbose):
    """Fit with early stopping, LR decay on plateaus and per-epoch checkpoints (for --resume);
    saves the kept weights atomically. Returns (history, early stopping, first epoch, seconds)."""
    from quantize.tf_compat import keras

    early = keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience, restore_best_weights=True)
    plateau = keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5,
                                               patience=max(1, patience // 2), min_lr=1e-6)
    checkpointer = _Checkpointer(out, clip)
    initial_epoch = 0
    if resume:
        state = checkpointer.restore()
        if state:
            initial_epoch = state["epochs_done"]
            early.best, plateau.best = state["best"], state["plateau_best"]
        if initial_epoch >= epochs:
            raise EdgekitError("run %s already trained %d epochs; pass a larger --epochs to continue"
                               % (out, initial_epoch))
    history_path = os.path.join(out, "history.csv")
    started = time.time()
    history = clip.fit(
        train_ds, validation_data=val_ds, epochs=epochs, initial_epoch=initial_epoch, verbose=verbose,
        callbacks=[early, plateau, checkpointer.callback(early, plateau),
                   keras.callbacks.CSVLogger(history_path, append=resume)])
    seconds = time.time() - started
    if early.best_weights is not None and early.stopped_epoch == 0:
        clip.set_weights(early.best_weights)  # keep the best epoch even without an early stop
    with atomic_path(info.weights_path, suffix=".weights.h5") as tmp:
        clip.save_weights(tmp)

    return history, early, initial_epoch, seconds


def _new_run_config(data_dir, out, task, backbone, size, clip_length, head_size, weights,
                    backbone_options, branches, loss_weights):
    """The checked ModelConfig of a new run; everything a user can get wrong fails here, before
    minutes of data loading and TensorFlow start-up."""
    if not data_dir or not os.path.isdir(data_dir):
        raise EdgekitError("data folder %s does not exist; make one with 'edgekit data synth'" % data_dir)
    if os.path.exists(os.path.join(out, "run.json")):
        raise EdgekitError("%s already holds a run; pass --resume to continue it or choose another --out" % out)
    config = make_config(task, data_dir, backbone, size, clip_length, head_size, weights, backbone_options)
    config.branches = branches
    config.validate()
    get_backbone(config.backbone)  # an unknown name fails before minutes of data loading
    for name, weight in (loss_weights or {}).items():
        try:
            config.task(name).weight = float(weight)
        except KeyError:
            raise EdgekitError("--loss-weight names unknown task %r; tasks: %s"
                               % (name, ", ".join(t.name for t in config.tasks)))
    return config


def train(data_dir, out, task="swim", backbone="efficientnet_b3", size=None, clip_length=15, stride=1,
          epochs=150, batch_size=4, learning_rate=5e-4, patience=10, head_size="seed", weights=None,
          backbone_options=None, loss_weights=None, seed=0, strategy="none", resume=False,
          augment=True, branches="fused", verbose=1):
    """Train an MTDNN on ``data_dir`` into run directory ``out``; returns the test metrics.

    With ``resume`` the run's own config, split and latest checkpoint are used and training
    continues from the epoch after the last one that finished.
    """
    if epochs < 1 or batch_size < 1 or learning_rate <= 0:
        raise EdgekitError("epochs and batch size must be >= 1 and the learning rate > 0")
    if resume:
        info = read_run(out)
        config, data_dir, stride = info.config, data_dir or info.data_dir, info.clip_stride
    else:
        config = _new_run_config(data_dir, out, task, backbone, size, clip_length, head_size,
                                 weights, backbone_options, branches, loss_weights)
        info = None

    data = load_task_data(config, data_dir, stride)
    # TensorFlow loads only now, after everything the user could have got wrong was checked.
    from quantize.data.pipeline import make_dataset
    from quantize.distribute import make_strategy
    from quantize.metrics import score
    from quantize.model import build_mtdnn
    from quantize.tf_compat import keras

    if info is None:
        splits = split_task_data(data, seed=seed)
        info = RunInfo(out, config, os.path.abspath(data_dir), splits, stride, _versions())
        write_run_info(info)
    parts = {name: data.select(names) for name, names in info.splits.items()}
    if len(parts["train"]) == 0 or len(parts["val"]) == 0:
        raise EdgekitError("%s has too few samples for a train/validation split (%d usable)"
                           % (data_dir, len(data)))

    keras.utils.set_random_seed(seed)
    distribution = make_strategy(strategy)
    with distribution.scope():
        model = build_mtdnn(config)
        compile_model(model.clip, config, learning_rate)
    train_ds = make_dataset(parts["train"].x, training_targets(config, parts["train"].targets),
                            batch_size, training=True, seed=seed, augment=augment)
    val_ds = make_dataset(parts["val"].x, training_targets(config, parts["val"].targets),
                          batch_size, training=False)

    history, early, initial_epoch, seconds = _fit(model.clip, out, info, train_ds, val_ds, epochs,
                                                  patience, resume, verbose)

    test = parts["test"] if len(parts["test"]) else parts["val"]
    outputs = predict(model.clip, test.x, batch_size=max(batch_size, 8))
    metrics = {
        "split": "test" if len(parts["test"]) else "val",
        "tasks": score(config, outputs, test.targets),
        "training": {"epochs_run": len(history.history.get("loss", [])) + initial_epoch,
                     "seconds": round(seconds, 1), "samples": {k: len(v) for k, v in parts.items()},
                     "skipped": [list(s) for s in data.skipped],
                     "best_val_loss": float(early.best) if np.isfinite(early.best) else None,
                     "strategy": strategy, "replicas": int(distribution.num_replicas_in_sync)},
        "parameters": model.parameter_counts(),
    }
    write_json(os.path.join(out, "metrics.json"), metrics)
    return metrics


def predict(keras_model, x_uint8, batch_size=16):
    """Run a Keras model over uint8 clips in batches; returns {output name: array}."""
    outputs = {}
    for start in range(0, len(x_uint8), batch_size):
        batch = keras_model(x_uint8[start:start + batch_size].astype(np.float32), training=False)
        for name, value in batch.items():
            outputs.setdefault(name, []).append(np.asarray(value))
    return {name: np.concatenate(parts) for name, parts in outputs.items()}


def _loss_weights(values):
    result = {}
    for item in values:
        name, _, weight = item.partition("=")
        try:
            result[name] = float(weight)
        except ValueError:
            raise EdgekitError("--loss-weight takes TASK=WEIGHT (e.g. action=2), got %r" % item)
    return result


def _backbone_options(values):
    result = {}
    for item in values:
        name, _, value = item.partition("=")
        if not value:
            raise EdgekitError("--backbone-option takes KEY=VALUE (e.g. alpha=0.35), got %r" % item)
        try:
            result[name] = json.loads(value)
        except ValueError:
            result[name] = value
    return result


@click.command("train")
@click.option("--task", type=click.Choice(["swim", "face"]), default="swim", show_default=True)
@click.option("--data", "data_dir", type=click.Path(file_okay=False), help="Clip folder (swim) or UTKFace folder (face).")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Run directory to create.")
@click.option("--backbone", default="efficientnet_b3", show_default=True)
@click.option("--backbone-option", multiple=True, help="KEY=VALUE passed to the backbone, e.g. alpha=0.35.")
@click.option("--weights", default=None, help="Backbone weights: a Keras .h5 file, or 'imagenet' (downloads).")
@click.option("--size", default=None, help="Frame size HxW [swim 100x100, face 198x198].")
@click.option("--clip-length", default=15, show_default=True, help="Frames per clip (T).")
@click.option("--stride", default=1, show_default=True, help="Take every n-th frame of a video.")
@click.option("--head-size", type=click.Choice(["seed", "tiny"]), default="seed", show_default=True)
@click.option("--epochs", default=150, show_default=True)
@click.option("--batch-size", default=4, show_default=True)
@click.option("--lr", "learning_rate", default=5e-4, show_default=True)
@click.option("--patience", default=10, show_default=True, help="Early-stopping patience (epochs).")
@click.option("--loss-weight", multiple=True, help="TASK=WEIGHT, e.g. action=2.")
@click.option("--seed", default=0, show_default=True)
@click.option("--strategy", type=click.Choice(["none", "mirrored", "multiworker"]), default="none", show_default=True)
@click.option("--no-augment", is_flag=True)
@click.option("--branches", type=click.Choice(["fused", "spatial", "temporal"]), default="fused", show_default=True,
              help="Blocks feeding the heads; the seed fuses both (single ones are for ablations).")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last checkpoint.")
def train_command(task, data_dir, out, backbone, backbone_option, weights, size, clip_length, stride,
                  head_size, epochs, batch_size, learning_rate, patience, loss_weight, seed, strategy,
                  no_augment, branches, resume):
    """Train the multi-task network on a data folder into a run directory."""
    from quantize.metrics import format_table

    metrics = train(data_dir, out, task, backbone, parse_size(size) if size else None, clip_length, stride,
                    epochs, batch_size, learning_rate, patience, head_size, weights,
                    _backbone_options(backbone_option), _loss_weights(loss_weight), seed, strategy,
                    resume, not no_augment, branches, verbose=1 if click.get_text_stream("stdout").isatty() else 2)
    click.echo("\n%s metrics (%d epochs, %.0f s):" % (metrics["split"], metrics["training"]["epochs_run"],
                                                     metrics["training"]["seconds"]))
    click.echo(format_table(metrics["tasks"]))
    click.echo("run written to %s" % out)
