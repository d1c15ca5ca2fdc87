"""Fine-tuning for QAT and pruning: progress per epoch, a checkpoint per epoch, ``--resume``.

The training state lives in a work directory beside ``--out`` (``OUT.partial/``), never inside
it, so an interrupted run leaves nothing in ``--out`` that looks like a finished model directory.
The model being fine-tuned is rebuilt deterministically from the run (same float weights, same
annotation), so restoring its variables and optimizer from the checkpoint continues the same
training; ``state.json`` says how many epochs of which phase are done.
"""

import json
import os

from edge.atomic import write_json
from edge.errors import EdgekitError
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
        self.kept_epoch = None  # fine_tune(keep_best=True): the epoch whose weights were kept

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


class KeepBest(keras.callbacks.Callback):
    """Leave the model with the weights of the lowest validation loss, the starting point included.

    Why: QAT starts from a converged float model whose quantizer ranges are already calibrated, so
    the starting point is often as good as it gets; a few epochs of fine-tuning on a small
    training split then move the weights by noise. On the quickstart run (48 test clips) two
    epochs left int8 action accuracy anywhere from 91.7 % to 95.8 % (float: 95.8 %) depending on
    the shuffle; validation loss tells the epochs apart without looking at the test split.
    """

    def __init__(self, start_loss, first_epoch):
        super().__init__()
        self.best_loss = float(start_loss)
        self.kept_epoch = int(first_epoch)  # the starting point: epochs done before this fit
        self.best_weights = None

    def on_train_begin(self, logs=None):
        self.best_weights = self.model.get_weights()

    def on_epoch_end(self, epoch, logs=None):
        loss = (logs or {}).get("val_loss")
        if loss is not None and loss < self.best_loss:
            self.best_loss, self.kept_epoch = float(loss), epoch + 1
            self.best_weights = self.model.get_weights()

    def on_train_end(self, logs=None):
        self.model.set_weights(self.best_weights)


def fine_tune(model, config, train, val, epochs, state, resume, batch_size=4, learning_rate=1e-4,
              callbacks=(), seed=0, verbose=1, keep_best=False):
    """Fine-tune ``model`` (a clip model: QAT or pruning-wrapped) for ``epochs`` epochs in total.

    ``train``/``val`` are TaskData. With ``resume`` the variables and optimizer of the last
    finished epoch are restored and only the remaining epochs run. ``keep_best`` (QAT; not for
    pruning, whose early epochs are not yet at the target sparsity) ends on the weights with the
    lowest validation loss among the starting point and the epochs run now (:class:`KeepBest`);
    ``state.kept_epoch`` says which. Returns the Keras history dict.
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
    if done >= epochs:  # finished before: the checkpoint holds the weights it kept
        state.optimizer_steps = int(model.optimizer.iterations.numpy())
        state.kept_epoch = saved.get("kept_epoch") if resume else None
        return {}
    data = make_dataset(train.x, training_targets(config, train.targets), batch_size, True, seed=seed)
    val_data = None
    if val is not None and len(val):
        val_data = make_dataset(val.x, training_targets(config, val.targets), batch_size, False)

    def on_epoch_end(epoch, logs):
        manager.save(checkpoint_number=epoch + 1)
        state.save(epoch + 1)

    callbacks = list(callbacks) + [keras.callbacks.LambdaCallback(on_epoch_end=on_epoch_end)]
    keeper = None
    if keep_best and val_data is not None:
        start_loss = model.evaluate(val_data, verbose=0, return_dict=True)["loss"]
        keeper = KeepBest(start_loss, done)
        callbacks.append(keeper)
    history = model.fit(data, validation_data=val_data, epochs=int(epochs), initial_epoch=done,
                        verbose=2 if verbose else 0, callbacks=callbacks)
    state.optimizer_steps = int(model.optimizer.iterations.numpy())
    if keeper is not None:
        # The last checkpoint must hold the kept weights, not the last epoch's, so a --resume
        # after this phase finished (e.g. interrupted while converting) exports the same model.
        state.kept_epoch = keeper.kept_epoch
        manager.save(checkpoint_number=int(epochs) + 1)
        state.save(epochs, extra={"kept_epoch": keeper.kept_epoch})
        if verbose:
            print("kept the weights after epoch %d of %d (lowest validation loss %.4f)"
                  % (keeper.kept_epoch, epochs, keeper.best_loss))
    return {k: [float(v) for v in vs] for k, vs in history.history.items()}
