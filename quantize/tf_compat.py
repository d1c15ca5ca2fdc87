"""The single entry point to TensorFlow on the host side.

tensorflow-model-optimization only works with Keras 2, so ``TF_USE_LEGACY_KERAS=1`` must be set
before TensorFlow is imported for the first time; every host module imports ``tf`` and ``keras``
from here instead of from TensorFlow directly, so the order is always right.
"""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402

if os.environ["TF_USE_LEGACY_KERAS"] != "1":  # pragma: no cover - defensive
    raise RuntimeError("TF_USE_LEGACY_KERAS must be 1 for tensorflow-model-optimization")

__all__ = ["tf", "keras"]
