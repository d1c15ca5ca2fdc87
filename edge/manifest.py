"""``manifest.json``: the contract between the host (``edgekit quantize``) and the camera.

The quantize side writes it beside the models it emits; the device side trusts nothing else. It
says which pixels the frame model wants (size, colour order, value range), how long a clip is,
which head output is which task, and which exact model files (sha256) it describes, so a camera
never silently runs a model with the wrong labels or the wrong preprocessing.

Loading is strict on purpose: every unknown key, missing key, wrong type or impossible value is
reported together in one :class:`EdgekitError`, each naming the key path
(``models.frame.inputs[0].scale``), because a manifest that half-parses is worse than one that
does not parse at all. The checks are the :mod:`edge.schema` Schemas at the end of this file
(the engine of every edgekit config file); JSON has no line numbers to give.

Schema (``schema_version`` 4; versions 1 to 3 are read and upgraded, see :func:`upgrade`)::

    schema_version: int            # 4
    name: str                      # "swim", "face"
    backbone: str                  # "efficientnet-b3", "tiny"
    method: str                    # fp32 | fp16 | dynamic | ptq | qat | prune-qat
    sparsity: float | null         # target sparsity for prune-qat, else null
    created: str                   # ISO 8601 time
    tool_versions: {str: str}      # e.g. {"tensorflow": "2.21.0", "edgekit": "0.1.0"}
    input: {height, width, channels, colour_order, value_range: [lo, hi], normalization: {..}}
    clip_length: int               # T, frames per decision
    default_stride: int            # run the head every this many frames
    feature_shape: [h, w, c]       # one frame's feature map (the frame model's "features")
    window: [{input, source, reduce}]
                                   # each head input (signature name), the frame output it is
                                   # made of, and how: "stack" (the last T outputs, oldest
                                   # first: head input [1, T, ...]), "mean" (their mean over
                                   # the window, kept as a running sum: head input [1, ...]) or
                                   # "recurrent" (the LSTM hidden states over the window, a
                                   # step per frame by the "step" model: head input [1, T, u])
    tasks: [{name, kind, labels: [str], output}]   # output = head output (signature key)
    models: {"frame"|"step"|"head"|"clip": ModelFile}
                                   # the TFLite files every backend can read; "step" (4) only
                                   # with a "recurrent" window
    variants: {variant: {"frame"|"head"|"clip": ModelFile}}
                                   # the same roles built for one backend, e.g. "edgetpu" (the
                                   # compiled frame model); a backend names the variant it runs
    ModelFile: {file, sha256, size_bytes, inputs: [TensorSpec], outputs: [TensorSpec], ops: [str]}
    TensorSpec: {name, shape: [int], dtype: str, scale: float | null, zero_point: int | null}
"""

import hashlib
import json
import os
import re
from dataclasses import dataclass, field, fields
from typing import Dict, List, Optional

from edge.atomic import write_bytes as atomic_write_bytes  # noqa: F401 - re-exported
from edge.atomic import write_text as atomic_write_text
from edge.errors import EdgekitError
from edge.schema import OMIT, Invalid, Key, Schema, Wording

SCHEMA_VERSION = 4
READABLE_VERSIONS = (1, 2, 3, 4)
DEFAULT_VARIANT = "tflite"
MANIFEST_NAME = "manifest.json"
METHODS = ("fp32", "fp16", "dynamic", "ptq", "qat", "prune-qat")
TASK_KINDS = ("classification", "regression", "embedding")
MODEL_ROLES = ("frame", "step", "head", "clip")
VARIANT_RE = re.compile(r"^[a-z][a-z0-9_]*$")
# How each backend variant is made (what a missing-variant error tells the user to run).
VARIANT_BUILDERS = dict({"edgetpu": "edgekit quantize --target coral"}, **dict.fromkeys(
    ("onnx", "onnx_fp32", "onnx_trt_int8"), "edgekit export --model DIR"))
REQUIRED_MODEL_ROLES = ("frame", "head")
COLOUR_ORDERS = ("RGB", "BGR")
WINDOW_REDUCTIONS = ("stack", "mean", "recurrent")
DTYPES = ("uint8", "int8", "int16", "int32", "int64", "float16", "float32", "bool")


@dataclass
class TensorSpec:
    """One model input or output: its signature name, shape, dtype and int8 quantization."""

    name: str
    shape: List[int]
    dtype: str
    scale: Optional[float] = None
    zero_point: Optional[int] = None

    @property
    def quantized(self):
        return self.scale is not None and self.scale != 0.0


@dataclass
class ModelFile:
    """A model file beside the manifest, pinned by sha256 so a swapped file is caught."""

    file: str
    sha256: str
    size_bytes: int
    inputs: List[TensorSpec]
    outputs: List[TensorSpec]
    ops: List[str] = field(default_factory=list)

    def output(self, name):
        """The output spec called ``name``; EdgekitError listing the names if there is none."""
        return self._named(self.outputs, "output", name)

    def input(self, name):
        """The input spec called ``name``; EdgekitError listing the names if there is none."""
        return self._named(self.inputs, "input", name)

    def _named(self, specs, kind, name):
        for spec in specs:
            if spec.name == name:
                return spec
        raise EdgekitError("model %s has no %s %r (it has %s); the manifest does not match the "
                           "model, re-run edgekit quantize"
                           % (self.file, kind, name, ", ".join(s.name for s in specs)))


@dataclass
class InputSpec:
    """What the frame model takes: RGB pixels 0..255 at (height, width); it normalises inside.

    ``normalization`` is informational: what the model does inside itself (e.g.
    ``{"scale": 1/255, "mean": [..], "std": [..]}``); the device never applies it.
    """

    height: int
    width: int
    channels: int = 3
    colour_order: str = "RGB"
    value_range: List[float] = field(default_factory=lambda: [0.0, 255.0])
    normalization: Dict[str, object] = field(default_factory=dict)


@dataclass
class TaskSpec:
    """One task: its kind, its class labels (empty for regression/embedding), its head output."""

    name: str
    kind: str
    labels: List[str]
    output: str


@dataclass
class WindowInput:
    """One head input and how the ring makes it from a frame output (see :mod:`edge.window_inputs`)."""

    input: str
    source: str
    reduce: str


@dataclass
class Manifest:
    name: str
    backbone: str
    method: str
    created: str
    input: InputSpec
    clip_length: int
    default_stride: int
    feature_shape: List[int]
    tasks: List[TaskSpec]
    models: Dict[str, ModelFile]
    window: List[WindowInput] = field(default_factory=list)
    variants: Dict[str, Dict[str, ModelFile]] = field(default_factory=dict)
    sparsity: Optional[float] = None
    tool_versions: Dict[str, str] = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION

    # -- serialisation -------------------------------------------------------------------------

    def to_dict(self):
        return _to_plain(self)

    @classmethod
    def from_dict(cls, data, where="manifest"):
        """The Manifest of parsed JSON ``data`` (version 1 upgraded); SchemaError listing every
        problem, each with its key path."""
        if not isinstance(data, dict):
            raise EdgekitError("%s: top level must be an object, got %s; fix or regenerate the "
                               "manifest" % (where, type(data).__name__))
        return cls(**MANIFEST_SCHEMA.validate(upgrade(data), where=where, wording=WORDING))

    @classmethod
    def load(cls, dir_or_path):
        """Read ``manifest.json`` from a model directory (or the file itself), strictly."""
        path = os.fspath(dir_or_path)
        if os.path.isdir(path):
            path = os.path.join(path, MANIFEST_NAME)
        if not os.path.isfile(path):
            raise EdgekitError("no manifest at %s; point --model at a directory written by "
                               "'edgekit quantize'" % path)
        try:
            with open(path, "r", encoding="utf-8") as handle:
                data = json.load(handle)
        except (ValueError, UnicodeDecodeError) as exc:
            raise EdgekitError("manifest %s is not valid JSON (%s); re-run edgekit quantize"
                               % (path, exc))
        return cls.from_dict(data, where=path)

    def save(self, directory):
        """Write ``manifest.json`` into ``directory`` atomically (temp file + os.replace)."""
        directory = os.fspath(directory)
        os.makedirs(directory, exist_ok=True)
        path = os.path.join(directory, MANIFEST_NAME)
        atomic_write_text(path, json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n")
        return path

    # -- queries -------------------------------------------------------------------------------

    def task(self, name):
        for task in self.tasks:
            if task.name == name:
                return task
        raise EdgekitError("manifest %s has no task %r (tasks: %s)"
                           % (self.name, name, ", ".join(t.name for t in self.tasks)))

    def model_file(self, role, variant=DEFAULT_VARIANT):
        """The ModelFile of ``role`` in ``variant`` ("tflite": the plain ``models``)."""
        if variant == DEFAULT_VARIANT:
            models, what = self.models, "model"
        elif variant in self.variants:
            models, what = self.variants[variant], "%s model" % variant
        else:
            raise EdgekitError("model %s has no %s variant (it has: %s); build it with %s"
                               % (self.name, variant, ", ".join(
                                   [DEFAULT_VARIANT] + sorted(self.variants)),
                                   VARIANT_BUILDERS.get(variant, "edgekit quantize")))
        if role not in models:
            raise EdgekitError("manifest %s lists no %s %s (it has %s); re-run edgekit quantize"
                               % (self.name, role, what, ", ".join(sorted(models))))
        return models[role]

    def runtime_roles(self):
        """The roles a camera runs, in order: the frame model, the step model where the window
        is recurrent (schema 4), the head. The clip model is for scoring only."""
        return [role for role in ("frame", "step", "head") if role in self.models]

    def model_path(self, directory, role, variant=DEFAULT_VARIANT):
        return os.path.join(os.fspath(directory), self.model_file(role, variant).file)

    def all_files(self):
        """[(variant, role, ModelFile)] for every file the manifest pins."""
        rows = [(DEFAULT_VARIANT, role, spec) for role, spec in sorted(self.models.items())]
        for variant, models in sorted(self.variants.items()):
            rows.extend((variant, role, spec) for role, spec in sorted(models.items()))
        return rows

    def verify(self, directory, roles=None, variant=DEFAULT_VARIANT):
        """Check the files of ``roles`` in ``variant`` (default: every file the manifest lists)
        exist with the recorded size and sha256."""
        directory = os.fspath(directory)
        if roles is None:
            entries = self.all_files()
        else:
            entries = [(variant, role, self.model_file(role, variant)) for role in roles]
        for variant_name, role, spec in entries:
            what = role if variant_name == DEFAULT_VARIANT else "%s %s" % (variant_name, role)
            path = os.path.join(directory, spec.file)
            if not os.path.isfile(path):
                raise EdgekitError("manifest does not match model: %s (%s model) is missing from "
                                   "%s; copy the whole model directory" % (spec.file, what,
                                                                          directory))
            size = os.path.getsize(path)
            if size != spec.size_bytes or sha256_file(path) != spec.sha256:
                raise EdgekitError("manifest does not match model %s (%s model): size/sha256 "
                                   "differ from manifest.json; the file was replaced or "
                                   "corrupted, copy the directory again or re-run edgekit "
                                   "quantize" % (path, what))


def upgrade(data):
    """An older manifest as version 4. Version 1's ``frame_edgetpu`` role becomes
    ``variants.edgetpu``; versions 1 and 2 had one frame output stacked into one head input,
    which becomes their ``window``; version 3 reads as it is (4 added the step model and the
    "recurrent" window).

    Model directories written before variants, the streaming split or the step model keep
    working; the file on disk is left as it is (the next ``save`` writes version 4).
    """
    if not isinstance(data, dict) or data.get("schema_version") not in (1, 2, 3):
        return data
    version = data["schema_version"]
    data = dict(data, schema_version=SCHEMA_VERSION)
    models = data.get("models")
    if version == 1 and isinstance(models, dict) and "frame_edgetpu" in models:
        models = dict(models)
        data["variants"] = {"edgetpu": {"frame": models.pop("frame_edgetpu")}}
        data["models"] = models
    if version < 3 and "window" not in data and isinstance(models, dict):
        data["window"] = _single_stack(models)
    return data


def _single_stack(models):
    """The window of a version-1/2 directory: the frame's one output stacked as the head's one
    input (names as recorded; the schema reports a malformed model entry)."""
    try:
        return [{"input": models["head"]["inputs"][0]["name"],
                 "source": models["frame"]["outputs"][0]["name"], "reduce": "stack"}]
    except (KeyError, IndexError, TypeError):
        return []


def sha256_file(path, chunk=1 << 20):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while True:
            block = handle.read(chunk)
            if not block:
                break
            digest.update(block)
    return digest.hexdigest()


# -- the schema of manifest.json (edge.schema): checked values build the dataclasses above ----

WORDING = Wording(
    unknown="unknown key {path}; this edgekit does not understand it (newer manifest?), remove "
            "it or upgrade edgekit",
    missing="missing key {path}; regenerate the manifest with edgekit quantize",
    wrong_type="{path} must be {expected}, got {value}",
    not_allowed="{path} is {value}, expected one of {allowed}; fix or regenerate the manifest",
    out_of_range="{path} is {value}, allowed: {allowed}; fix or regenerate the manifest",
    invalid="{path} {message}; fix or regenerate the manifest",
    bad_name="{path} is not {allowed}; fix or regenerate the manifest",
    many="{where}: {count} problems; fix or regenerate the manifest:\n  {problems}",
    expected=dict(Wording.expected, table="an object", map="an object", tables="a list"),
)


def _version(value):
    if value != SCHEMA_VERSION:
        raise Invalid("is %d but this edgekit reads versions %s"
                      % (value, ", ".join(str(v) for v in READABLE_VERSIONS)))
    return value


def _length(n, shape):
    def check(value):
        if len(value) != n:
            raise Invalid("must be %s" % shape)
        return value
    return check


def _required_roles(models):
    for role in REQUIRED_MODEL_ROLES:
        if role not in models:
            raise Invalid("has no %r entry" % role)
    return models


def _not_empty(values):
    if not values:
        raise Invalid("is empty")
    return values


def _task_rules(task, report, path):
    if task["kind"] == "classification" and task["labels"] == []:
        report.invalid(path + ("labels",), "is empty for a classification task")


def _one_of(choices):
    return Key("str", choices=choices, allowed=", ".join(choices))


def _of(schema, cls, kind="table"):
    """A Key of ``kind`` "table" checked by ``schema`` whose value becomes a ``cls``: absent
    optional keys take the dataclass's defaults (OMIT), so the defaults live in one place."""
    return Key(kind, schema=schema, check=lambda values: cls(**values))


_TENSOR = _of(Schema({
    "name": Key("str"), "shape": Key("list", item="int"),
    "dtype": _one_of(DTYPES),
    "scale": Key("number", OMIT, nullable=True), "zero_point": Key("int", OMIT, nullable=True),
}), TensorSpec)
_MODEL = _of(Schema({
    "file": Key("str"), "sha256": Key("str"), "size_bytes": Key("int"),
    "inputs": Key("list", item=_TENSOR), "outputs": Key("list", item=_TENSOR),
    "ops": Key("list", OMIT, item="str"),
}), ModelFile)
_ROLES = dict(item=_MODEL, names="^(%s)$" % "|".join(map(re.escape, MODEL_ROLES)),
              names_help="a known model role (%s)" % ", ".join(MODEL_ROLES))
MANIFEST_SCHEMA = Schema({
    "schema_version": Key("int", OMIT, check=_version),
    "name": Key("str"), "backbone": Key("str"), "method": _one_of(METHODS),
    "sparsity": Key("number", OMIT, nullable=True), "created": Key("str"),
    "tool_versions": Key("map", OMIT, item="str"),
    "input": _of(Schema({
        "height": Key("int", low=1), "width": Key("int", low=1),
        "channels": Key("int", OMIT, low=1),
        "colour_order": Key("str", OMIT, choices=COLOUR_ORDERS, allowed=", ".join(COLOUR_ORDERS)),
        "value_range": Key("list", OMIT, item="number", check=_length(2, "[low, high]")),
        "normalization": Key("table", OMIT),
    }), InputSpec),
    "clip_length": Key("int", low=1), "default_stride": Key("int", low=1),
    "feature_shape": Key("list", item="int", check=_length(3, "[h, w, c]")),
    "window": Key("list", item=_of(Schema({
        "input": Key("str"), "source": Key("str"), "reduce": _one_of(WINDOW_REDUCTIONS),
    }), WindowInput), check=_not_empty),
    "tasks": Key("list", item=_of(Schema({
        "name": Key("str"), "kind": _one_of(TASK_KINDS),
        "labels": Key("list", item="str"), "output": Key("str"),
    }, check=_task_rules), TaskSpec), check=_not_empty),
    "models": Key("map", check=_required_roles, **_ROLES),
    "variants": Key("map", OMIT, item=Key("map", **_ROLES),
                    names="^(?!%s$)%s" % (DEFAULT_VARIANT, VARIANT_RE.pattern[1:]),
                    names_help="a variant name (lower-case letters, digits, '_'; %r is the plain "
                               "models)" % DEFAULT_VARIANT),
})


def _to_plain(obj):
    if hasattr(obj, "__dataclass_fields__"):
        return {f.name: _to_plain(getattr(obj, f.name)) for f in fields(obj)}
    if isinstance(obj, dict):
        return {str(k): _to_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_to_plain(v) for v in obj]
    if hasattr(obj, "item") and not isinstance(obj, (str, bytes)):  # numpy scalars
        return obj.item()
    return obj
