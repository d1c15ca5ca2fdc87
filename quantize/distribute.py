"""Choosing a tf.distribute strategy for training.

``none`` trains on the default device; ``mirrored`` replicates over every local GPU (or every
logical CPU device when there is no GPU — which is how tests exercise it); ``multiworker`` spans
the machines named in the TF_CONFIG environment variable.
"""

import json
import os

from edge.errors import EdgekitError
from quantize.tf_compat import tf

STRATEGIES = ("none", "mirrored", "multiworker")


def make_strategy(name):
    if name == "none":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        devices = [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]
        return tf.distribute.MirroredStrategy(devices=devices)
    if name == "multiworker":
        raw = os.environ.get("TF_CONFIG")
        if not raw:
            raise EdgekitError("--strategy multiworker needs TF_CONFIG naming the cluster and this "
                               "worker's task, e.g. {\"cluster\": {\"worker\": [\"host1:12345\", "
                               "\"host2:12345\"]}, \"task\": {\"type\": \"worker\", \"index\": 0}}")
        try:
            json.loads(raw)
        except ValueError as exc:
            raise EdgekitError("TF_CONFIG is not valid JSON: %s" % exc)
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise EdgekitError("unknown strategy %r; choose one of %s" % (name, ", ".join(STRATEGIES)))
