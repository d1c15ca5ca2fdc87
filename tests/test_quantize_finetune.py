"""KeepBest: QAT fine-tuning ends on the weights with the lowest validation loss, start included."""

import numpy as np

from quantize.quantization.finetune import KeepBest
from quantize.tf_compat import keras


def _fit(train_y, val_y, epochs=3):
    """A linear model that starts at y = x (exact on the validation targets ``val_y`` = x)."""
    x = np.linspace(-1, 1, 64, dtype=np.float32)[:, None]
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.set_weights([np.ones((1, 1), np.float32), np.zeros(1, np.float32)])
    model.compile(keras.optimizers.SGD(0.1), "mse")
    start_loss = model.evaluate(x, val_y(x), verbose=0)
    keeper = KeepBest(start_loss, 0)
    model.fit(x, train_y(x), validation_data=(x, val_y(x)), epochs=epochs, verbose=0,
              callbacks=[keeper])
    return model, keeper


def test_keeps_the_starting_point_when_fine_tuning_only_hurts():
    model, keeper = _fit(train_y=lambda x: -x, val_y=lambda x: x)  # training pulls away
    assert keeper.kept_epoch == 0
    np.testing.assert_array_equal(model.get_weights()[0], [[1.0]])


def test_keeps_the_epoch_that_helps_most():
    model, keeper = _fit(train_y=lambda x: 2 * x, val_y=lambda x: 2 * x)  # training helps
    assert keeper.kept_epoch == 3  # monotone improvement here: the last epoch
    assert abs(model.get_weights()[0][0, 0] - 2.0) < 1.0
