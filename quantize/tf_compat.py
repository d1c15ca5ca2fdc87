"""The single entry point to TensorFlow on the host side.

tensorflow-model-optimization only works with Keras 2, so ``TF_USE_LEGACY_KERAS=1`` must be set
before TensorFlow is imported for the first time; every host module imports ``tf`` and ``keras``
from here instead of from TensorFlow directly, so the order is always right.

TensorFlow 2.21's native start-up lines (oneDNN, CUDA probing on a machine without a GPU) are
written by C++ before any log level applies; they are not errors and would bury edgekit's own
output, so they are silenced while TensorFlow loads and probes devices. Set
``EDGEKIT_TF_VERBOSE=1`` to see them.
"""

import contextlib
import os
import sys

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@contextlib.contextmanager
def _native_stderr_silenced():
    if os.environ.get("EDGEKIT_TF_VERBOSE") == "1":
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real stderr (e.g. captured): nothing to silence
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


with _native_stderr_silenced():
    import tensorflow as tf  # noqa: E402
    import tf_keras as keras  # noqa: E402

    tf.config.list_physical_devices()  # the CUDA probe happens here, silently

if os.environ["TF_USE_LEGACY_KERAS"] != "1":  # pragma: no cover - defensive
    raise RuntimeError("TF_USE_LEGACY_KERAS must be 1 for tensorflow-model-optimization")

__all__ = ["tf", "keras"]
