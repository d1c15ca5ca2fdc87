"""What an MTDNN instance is, as plain data (no TensorFlow).

One :class:`ModelConfig` describes a network completely: the backbone, the input clip, the widths
of the spatial/temporal blocks and one :class:`TaskSpec` per head. The seed's two instances are
:func:`swim_config` and :func:`face_config`; both are built by the same builder
(:func:`quantize.model.build_mtdnn`). The config is saved in every run directory so a run can be
rebuilt exactly, and its task list is what the device manifest's tasks are made from.

Checking is :data:`CONFIG_SCHEMA` on :mod:`edge.schema`, the engine every edgekit config file
uses: a hand-edited or foreign ``config.json`` gets every problem at once, each with its key path
(``tasks[1].loss = 'l1' is not allowed; allowed: crossentropy | squared_hinge | mse``), instead of
a TypeError from a dataclass constructor.
"""

import dataclasses
import json
from dataclasses import dataclass, field
from typing import List, Optional

from edge.errors import EdgekitError
from edge.schema import Key, Schema

KINDS = ("classification", "regression")
BRANCHES = ("fused", "spatial", "temporal")
LOSSES = ("crossentropy", "squared_hinge", "mse")

SWIM_ACTIONS = ["breaststroke", "drowning", "freestyle", "safe"]
SWIM_IDENTITIES = ["swimmer1", "swimmer2", "swimmer3", "swimmer4"]


@dataclass
class TaskSpec:
    """One head: its output name, what it predicts and how it is trained."""

    name: str
    kind: str  # classification | regression
    labels: List[str]  # class names; for regression a one-element list naming the unit
    loss: str  # crossentropy | squared_hinge | mse
    weight: float = 1.0
    embedding: bool = False  # also expose an L2-normalised embedding output "<name>_embedding"

    @property
    def num_outputs(self):
        return len(self.labels) if self.kind == "classification" else 1

    @property
    def embedding_output(self):
        return self.name + "_embedding" if self.embedding else None


@dataclass
class HeadWidths:
    """Widths of everything after the backbone. ``seed`` reproduces the thesis; ``tiny`` is for tests."""

    spatial_filters: int = 512
    lstm_units: int = 256
    attention_units: int = 32
    head_units: int = 1024
    dropout: float = 0.3
    head_dropout: float = 0.5
    # keras.applications hard-code BatchNorm momentum 0.99 (EfficientNet) / 0.999 (MobileNetV2),
    # tuned for ImageNet-length training: on a few hundred steps from scratch the moving
    # statistics lag the weights so far that inference collapses to one class. 0.9 tracks them.
    bn_momentum: float = 0.9


def _check_task(task, report, path):
    if task["kind"] == "classification" and task["labels"] is not None \
            and len(task["labels"]) < 2:
        report.invalid(path + ("labels",), "has %d label(s); a classification task needs at "
                       "least two" % len(task["labels"]))
    if task["kind"] == "regression" and task["loss"] not in (None, "mse"):
        report.invalid(path + ("loss",), "= %r does not fit a regression task; allowed: mse"
                       % task["loss"])


def _check_config(config, report, path):
    tasks = config["tasks"]
    if tasks is None:
        return
    if not tasks:
        report.invalid(path + ("tasks",), "is empty; a network needs at least one task (head)")
    first = {}
    for i, task in enumerate(tasks):
        name = task["name"] if task is not None else None
        if name is not None and name in first:
            report.invalid(path + ("tasks", i, "name"), "= %r is tasks[%d]'s name too; task names "
                           "must be unique" % (name, first[name]))
        first.setdefault(name, i)


_WIDTHS = HeadWidths()
TASK_SCHEMA = Schema({
    "name": Key("text", help="the head's output name, e.g. action"),
    "kind": Key("str", choices=KINDS),
    "labels": Key("list", item="text", help="class names; for regression one name for the unit"),
    "loss": Key("str", choices=LOSSES),
    "weight": Key("number", 1.0, low=0.0, help="the task's weight in the total loss"),
    "embedding": Key("bool", False, help="also output an L2-normalised embedding"),
}, check=_check_task)
WIDTHS_SCHEMA = Schema({
    "spatial_filters": Key("int", _WIDTHS.spatial_filters, low=1),
    "lstm_units": Key("int", _WIDTHS.lstm_units, low=1),
    "attention_units": Key("int", _WIDTHS.attention_units, low=1),
    "head_units": Key("int", _WIDTHS.head_units, low=1),
    "dropout": Key("number", _WIDTHS.dropout, 0.0, 0.95),
    "head_dropout": Key("number", _WIDTHS.head_dropout, 0.0, 0.95),
    "bn_momentum": Key("number", _WIDTHS.bn_momentum, 0.0, 1.0),
})
CONFIG_SCHEMA = Schema({
    "name": Key("text", help="the instance, e.g. swim or face"),
    "backbone": Key("text", help="a name from quantize/backbones.py"),
    "clip_length": Key("int", low=1, help="frames per clip (1 for images)"),
    "height": Key("int", low=16, help="input pixels; at least 16"),
    "width": Key("int", low=16, help="input pixels; at least 16"),
    "tasks": Key("tables", schema=TASK_SCHEMA, help="one table per head"),
    "widths": Key("table", {}, schema=WIDTHS_SCHEMA),
    "backbone_options": Key("table", {}),
    "weights": Key("text", None, nullable=True, help="imagenet or a Keras weights file"),
    "branches": Key("str", "fused", choices=BRANCHES),
}, check=_check_config)

HEAD_SIZES = {
    "seed": {},
    "tiny": dict(spatial_filters=16, lstm_units=16, attention_units=8, head_units=32),
}


@dataclass
class ModelConfig:
    name: str  # swim | face
    backbone: str
    clip_length: int
    height: int
    width: int
    tasks: List[TaskSpec]
    widths: HeadWidths = field(default_factory=HeadWidths)
    backbone_options: dict = field(default_factory=dict)
    weights: Optional[str] = None  # None | "imagenet" | path to a Keras weights file
    # Which blocks feed the heads: the seed fuses both; one alone is for the ablation benchmark.
    branches: str = "fused"  # fused | spatial | temporal

    def task(self, name):
        for task in self.tasks:
            if task.name == name:
                return task
        raise KeyError(name)

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data, where="model config"):
        """Check ``data`` (e.g. a run's config.json) against :data:`CONFIG_SCHEMA` and build it."""
        values = CONFIG_SCHEMA.validate(data, where=where)
        values["tasks"] = [TaskSpec(**t) for t in values["tasks"]]
        values["widths"] = HeadWidths(**values["widths"])
        return cls(**values)

    def to_json(self):
        return json.dumps(self.to_dict(), indent=2)

    def validate(self, where="model config"):
        """Check this config (after code or a command line changed it); returns it."""
        CONFIG_SCHEMA.validate(self.to_dict(), where=where)
        return self


def _widths(head_size, head_units):
    if head_size not in HEAD_SIZES:
        raise EdgekitError("unknown head size %r; choose one of %s" % (head_size, ", ".join(HEAD_SIZES)))
    options = dict(HEAD_SIZES[head_size])
    if head_size == "seed":
        options["head_units"] = head_units
    return HeadWidths(**options)


def swim_config(backbone="efficientnet_b3", size=(100, 100), clip_length=15, actions=None,
                identities=None, head_size="seed", weights=None, backbone_options=None):
    """The swimmer instance: a clip -> action (softmax) and identity (softmax + embedding)."""
    tasks = [
        TaskSpec("action", "classification", list(actions or SWIM_ACTIONS), "crossentropy"),
        TaskSpec("identity", "classification", list(identities or SWIM_IDENTITIES), "crossentropy",
                 embedding=True),
    ]
    return ModelConfig("swim", backbone, clip_length, size[0], size[1], tasks,
                       _widths(head_size, 1024), dict(backbone_options or {}), weights).validate()


def face_config(backbone="efficientnet_b3", size=(198, 198), head_size="seed", weights=None,
                backbone_options=None):
    """The UTKFace instance: one image (N = 1) -> age (MSE), gender (cross-entropy), race (squared hinge)."""
    from quantize.data.utkface import GENDERS, RACES

    tasks = [
        TaskSpec("age", "regression", ["years"], "mse", weight=0.01),
        TaskSpec("gender", "classification", list(GENDERS), "crossentropy"),
        TaskSpec("race", "classification", list(RACES), "squared_hinge"),
    ]
    return ModelConfig("face", backbone, 1, size[0], size[1], tasks,
                       _widths(head_size, 512), dict(backbone_options or {}), weights).validate()
