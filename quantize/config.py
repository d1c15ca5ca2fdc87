"""What an MTDNN instance is, as plain data (no TensorFlow).

One :class:`ModelConfig` describes a network completely: the backbone, the input clip, the widths
of the spatial/temporal blocks and one :class:`TaskSpec` per head. The seed's two instances are
:func:`swim_config` and :func:`face_config`; both are built by the same builder
(:func:`quantize.model.build_mtdnn`). The config is saved in every run directory so a run can be
rebuilt exactly, and its task list is what the device manifest's tasks are made from.
"""

import dataclasses
import json
from dataclasses import dataclass, field
from typing import List, Optional

from edge.errors import EdgekitError

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
    def from_dict(cls, data):
        try:
            data = dict(data)
            data["tasks"] = [TaskSpec(**t) for t in data["tasks"]]
            data["widths"] = HeadWidths(**data.get("widths", {}))
            config = cls(**data)
        except (TypeError, KeyError) as exc:
            raise EdgekitError("model config is malformed (%s); was it written by 'edgekit train'?" % exc)
        config.validate()
        return config

    def to_json(self):
        return json.dumps(self.to_dict(), indent=2)

    def validate(self):
        if self.clip_length < 1:
            raise EdgekitError("clip length must be >= 1, got %d" % self.clip_length)
        if min(self.height, self.width) < 16:
            raise EdgekitError("input size must be at least 16x16, got %dx%d" % (self.height, self.width))
        if self.branches not in BRANCHES:
            raise EdgekitError("branches must be one of %s, got %r" % (", ".join(BRANCHES), self.branches))
        names = [t.name for t in self.tasks]
        if not names or len(set(names)) != len(names):
            raise EdgekitError("tasks must be a non-empty list of unique names, got %s" % names)
        for task in self.tasks:
            if task.kind not in KINDS or task.loss not in LOSSES:
                raise EdgekitError("task %r: kind must be one of %s and loss one of %s"
                                   % (task.name, KINDS, LOSSES))
            if task.kind == "classification" and len(task.labels) < 2:
                raise EdgekitError("task %r needs at least two labels" % task.name)
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
    from edge.data.utkface import GENDERS, RACES

    tasks = [
        TaskSpec("age", "regression", ["years"], "mse", weight=0.01),
        TaskSpec("gender", "classification", list(GENDERS), "crossentropy"),
        TaskSpec("race", "classification", list(RACES), "squared_hinge"),
    ]
    return ModelConfig("face", backbone, 1, size[0], size[1], tasks,
                       _widths(head_size, 512), dict(backbone_options or {}), weights).validate()
