"""The run directory: what ``edgekit train`` leaves and every later step starts from.

Layout (every file written atomically)::

    RUN/run.json            marker + provenance: kind, versions, data folder, split file names
    RUN/config.json         the ModelConfig; the model is rebuilt from it, no pickled layers
    RUN/model.weights.h5    the trained weights of the clip model (best on validation)
    RUN/metrics.json        per-task test metrics and training summary
    RUN/history.csv         per-epoch losses and metrics
    RUN/checkpoints/        the latest training state (weights + optimizer) for --resume
"""

import json
import os
from dataclasses import dataclass, field
from typing import Dict, List

from edge.atomic import write_json
from edge.errors import EdgekitError
from quantize.config import ModelConfig

RUN_KIND = "edgekit-mtdnn-run"
WEIGHTS_FILE = "model.weights.h5"


@dataclass
class RunInfo:
    path: str
    config: ModelConfig
    data_dir: str = ""
    splits: Dict[str, List[str]] = field(default_factory=dict)  # split -> file names
    clip_stride: int = 1
    versions: Dict[str, str] = field(default_factory=dict)

    @property
    def weights_path(self):
        return os.path.join(self.path, WEIGHTS_FILE)

    def metrics(self):
        path = os.path.join(self.path, "metrics.json")
        if not os.path.isfile(path):
            return {}
        with open(path) as handle:
            return json.load(handle)


def write_run_info(info):
    os.makedirs(info.path, exist_ok=True)
    write_json(os.path.join(info.path, "config.json"), info.config.to_dict())
    write_json(os.path.join(info.path, "run.json"), {
        "kind": RUN_KIND,
        "data_dir": info.data_dir,
        "clip_stride": info.clip_stride,
        "splits": info.splits,
        "versions": info.versions,
    })


def read_run(path):
    """Read a run directory's description, with a clear error when it is not one."""
    if not os.path.isdir(path):
        raise EdgekitError("run directory %s does not exist; train one with 'edgekit train'" % path)
    marker = os.path.join(path, "run.json")
    try:
        with open(marker) as handle:
            meta = json.load(handle)
        config_path = os.path.join(path, "config.json")
        with open(config_path) as handle:
            config = ModelConfig.from_dict(json.load(handle), where=config_path)
    except (OSError, ValueError) as exc:
        raise EdgekitError("%s is not an edgekit run (%s); train one with 'edgekit train'" % (path, exc))
    if meta.get("kind") != RUN_KIND:
        raise EdgekitError("%s is not an edgekit run (run.json kind is %r)" % (path, meta.get("kind")))
    return RunInfo(path, config, meta.get("data_dir", ""), meta.get("splits", {}),
                   int(meta.get("clip_stride", 1)), meta.get("versions", {}))


def load_run_model(path):
    """Rebuild a run's MTDNN from its config and load its trained weights."""
    from quantize.model import build_mtdnn

    info = read_run(path)
    if not os.path.isfile(info.weights_path):
        raise EdgekitError("run %s has no trained weights (%s); the training did not finish — "
                           "continue it with 'edgekit train ... --resume'" % (path, WEIGHTS_FILE))
    config = info.config
    config.weights = None  # the run's weights replace whatever the backbone started from
    model = build_mtdnn(config)
    try:
        model.clip.load_weights(info.weights_path)
    except Exception as exc:  # h5py / keras raise many kinds on a bad or mismatched file
        raise EdgekitError("could not load %s: %s" % (info.weights_path, exc))
    return model, info
