"""Fine-tuning for QAT and pruning: progress per epoch, a checkpoint per epoch, ``--resume``.

The training state lives in a work directory beside ``--out`` (``OUT.partial/``), never inside
it, so an interrupted run leaves nothing in ``--out`` that looks like a finished model directory.
The model being fine-tuned is rebuilt deterministically from the run (same float weights, same
annotation), so restoring its variables and optimizer from the checkpoint continues the same
training; ``state.json`` says how many epochs of which phase are done.
"""

import json
import os

from edge.errors import EdgekitError
from quantize.fsutil import write_json
from quantize.tf_compat import keras, tf


class PhaseState:
    """Checkpointed progress of one fine-tuning phase ('qat', 'prune') in ``work_dir``."""

    def __init__(self, work_dir, phase, settings):
        self.directory = os.path.join(work_dir, phase)
        self.state_path = os.path.join(self.directory, "state.json")
        self.phase = phase
        self.settings = dict(settings)
        self.resumed_after = 0  # epochs restored from a checkpoint by fine_tune(resume=True)
        self.optimizer_steps = 0  # optimizer iterations when fine_tune returned

    def load(self):
        """Epochs done so far (0 without a state). A state made with other settings is an error."""
        if not os.path.isfile(self.state_path):
            return {"epochs_done": 0, "finished": False}
        with open(self.state_path) as handle:
            state = json.load(handle)
        if state.get("settings") != self.settings:
            raise EdgekitError("cannot --resume: %s was started with %s, this run asks for %s; "
                               "drop --resume (and delete %s) to start over"
                               % (self.directory, state.get("settings"), self.settings,
                                  os.path.dirname(self.directory)))
        return state

    def save(self, epochs_done, finished=False, extra=None):
        data = {"phase": self.phase, "settings": self.settings, "epochs_done": int(epochs_done),
                "finished": bool(finished)}
        data.update(extra or {})
        write_json(self.state_path, data)


def fine_tune(model, config, train, val, epochs, state, resume, batch_size=4, learning_rate=1e-4,
              callbacks=(), seed=0, verbose=1):
    """Fine-tune ``model`` (a clip model: QAT or pruning-wrapped) for ``epochs`` epochs in total.

    ``train``/``val`` are TaskData. With ``resume`` the variables and optimizer of the last
    finished epoch are restored and only the remaining epochs run. Returns the Keras history dict.
    """
    from quantize.data.pipeline import make_dataset
    from quantize.train import compile_model, training_targets

    if len(train) == 0:
        raise EdgekitError("the run's training split is empty; QAT needs training clips")
    compile_model(model, config, learning_rate)
    os.makedirs(state.directory, exist_ok=True)
    checkpoint = tf.train.Checkpoint(model=model, optimizer=model.optimizer)
    manager = tf.train.CheckpointManager(checkpoint, state.directory, max_to_keep=1)
    done = 0
    if resume:
        saved = state.load()
        done = int(saved.get("epochs_done", 0))
        if done and manager.latest_checkpoint:
            # Build the optimizer's slots first, so restore fills them instead of deferring.
            model.optimizer.build(model.trainable_variables)
            checkpoint.restore(manager.latest_checkpoint).expect_partial()
            if verbose:
                print("resuming %s fine-tuning after epoch %d of %d" % (state.phase, done, epochs))
        else:
            done = 0
    state.resumed_after = done
    if done >= epochs:
        state.optimizer_steps = int(model.optimizer.iterations.numpy())
        return {}
    data = make_dataset(train.x, training_targets(config, train.targets), batch_size, True, seed=seed)
    val_data = None
    if val is not None and len(val):
        val_data = make_dataset(val.x, training_targets(config, val.targets), batch_size, False)

    def on_epoch_end(epoch, logs):
        manager.save(checkpoint_number=epoch + 1)
        state.save(epoch + 1)

    history = model.fit(data, validation_data=val_data, epochs=int(epochs), initial_epoch=done,
                        verbose=2 if verbose else 0,
                        callbacks=list(callbacks) + [keras.callbacks.LambdaCallback(on_epoch_end=on_epoch_end)])
    state.optimizer_steps = int(model.optimizer.iterations.numpy())
    return {k: [float(v) for v in vs] for k, vs in history.history.items()}
