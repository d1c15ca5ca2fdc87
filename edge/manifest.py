"""``manifest.json``: the contract between the host (``edgekit quantize``) and the camera.

The quantize side writes it beside the models it emits; the device side trusts nothing else. It
says which pixels the frame model wants (size, colour order, value range), how long a clip is,
which head output is which task, and which exact model files (sha256) it describes, so a camera
never silently runs a model with the wrong labels or the wrong preprocessing.

Loading is strict on purpose: an unknown key, a missing key or a wrong type is an
:class:`EdgekitError` naming the key path (``models.frame.inputs[0].scale``), because a manifest
that half-parses is worse than one that does not parse at all.

Schema (``schema_version`` 2; version 1 files are read and upgraded, see :func:`upgrade`)::

    schema_version: int            # 2
    name: str                      # "swim", "face"
    backbone: str                  # "efficientnet-b3", "tiny"
    method: str                    # fp32 | fp16 | dynamic | ptq | qat | prune-qat
    sparsity: float | null         # target sparsity for prune-qat, else null
    created: str                   # ISO 8601 time
    tool_versions: {str: str}      # e.g. {"tensorflow": "2.21.0", "edgekit": "0.1.0"}
    input: {height, width, channels, colour_order, value_range: [lo, hi], normalization: {..}}
    clip_length: int               # T, frames per decision
    default_stride: int            # run the head every this many frames
    feature_shape: [h, w, c]       # one frame's feature map (frame model output, head input)
    tasks: [{name, kind, labels: [str], output}]   # output = head output (signature key)
    models: {"frame"|"head"|"clip": ModelFile}      # the TFLite files every backend can read
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
import tempfile
from dataclasses import MISSING as _MISSING
from dataclasses import dataclass, field, fields
from typing import Dict, List, Optional

from edge.errors import EdgekitError

SCHEMA_VERSION = 2
READABLE_VERSIONS = (1, 2)
DEFAULT_VARIANT = "tflite"
MANIFEST_NAME = "manifest.json"
METHODS = ("fp32", "fp16", "dynamic", "ptq", "qat", "prune-qat")
TASK_KINDS = ("classification", "regression", "embedding")
MODEL_ROLES = ("frame", "head", "clip")
VARIANT_RE = re.compile(r"^[a-z][a-z0-9_]*$")
# How each backend variant is made (what a missing-variant error tells the user to run).
VARIANT_BUILDERS = dict({"edgetpu": "edgekit quantize --target coral"}, **dict.fromkeys(
    ("onnx", "onnx_fp32", "onnx_trt_int8"), "edgekit export --model DIR"))
REQUIRED_MODEL_ROLES = ("frame", "head")
COLOUR_ORDERS = ("RGB", "BGR")
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
        for spec in self.outputs:
            if spec.name == name:
                return spec
        raise EdgekitError("model %s has no output %r (it has %s); the manifest's tasks do not "
                           "match the model, re-run edgekit quantize"
                           % (self.file, name, ", ".join(s.name for s in self.outputs)))


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
    variants: Dict[str, Dict[str, ModelFile]] = field(default_factory=dict)
    sparsity: Optional[float] = None
    tool_versions: Dict[str, str] = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION

    # -- serialisation -------------------------------------------------------------------------

    def to_dict(self):
        return _to_plain(self)

    @classmethod
    def from_dict(cls, data, where="manifest"):
        manifest = _from_plain(cls, upgrade(data), where)
        manifest._check_values(where)
        return manifest

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

    # -- value checks (types are checked while parsing) -----------------------------------------

    def _check_values(self, where):
        def bad(key, message):
            raise EdgekitError("%s: %s %s; fix or regenerate the manifest" % (where, key, message))

        if self.schema_version != SCHEMA_VERSION:
            bad("schema_version", "is %d but this edgekit reads versions %s"
                % (self.schema_version, ", ".join(str(v) for v in READABLE_VERSIONS)))
        if self.method not in METHODS:
            bad("method", "is %r, expected one of %s" % (self.method, ", ".join(METHODS)))
        if self.input.colour_order not in COLOUR_ORDERS:
            bad("input.colour_order", "is %r, expected RGB or BGR" % self.input.colour_order)
        if min(self.input.height, self.input.width, self.input.channels) < 1:
            bad("input", "height/width/channels must be >= 1")
        if len(self.input.value_range) != 2:
            bad("input.value_range", "must be [low, high]")
        if self.clip_length < 1:
            bad("clip_length", "must be >= 1")
        if self.default_stride < 1:
            bad("default_stride", "must be >= 1")
        if len(self.feature_shape) != 3:
            bad("feature_shape", "must be [h, w, c]")
        for role in REQUIRED_MODEL_ROLES:
            if role not in self.models:
                bad("models", "has no %r entry" % role)
        for variant in self.variants:
            if not VARIANT_RE.match(variant) or variant == DEFAULT_VARIANT:
                bad("variants.%s" % variant, "is not a variant name (lower-case letters, digits, "
                    "'_'; %r is the plain models)" % DEFAULT_VARIANT)
        for variant, role, model in self.all_files():
            key = "models.%s" % role if variant == DEFAULT_VARIANT else "variants.%s.%s" % (
                variant, role)
            if role not in MODEL_ROLES:
                bad(key, "is not a known model role (%s)" % ", ".join(MODEL_ROLES))
            for kind in ("inputs", "outputs"):
                for i, spec in enumerate(getattr(model, kind)):
                    if spec.dtype not in DTYPES:
                        bad("%s.%s[%d].dtype" % (key, kind, i),
                            "is %r, expected one of %s" % (spec.dtype, ", ".join(DTYPES)))
        for i, task in enumerate(self.tasks):
            if task.kind not in TASK_KINDS:
                bad("tasks[%d].kind" % i, "is %r, expected one of %s"
                    % (task.kind, ", ".join(TASK_KINDS)))
            if task.kind == "classification" and not task.labels:
                bad("tasks[%d].labels" % i, "is empty for a classification task")
        if not self.tasks:
            bad("tasks", "is empty")


def upgrade(data):
    """A version-1 manifest as version 2: its ``frame_edgetpu`` role becomes ``variants.edgetpu``.

    Model directories written before variants existed keep working; the file on disk is left as
    it is (the next ``save`` writes version 2).
    """
    if not isinstance(data, dict) or data.get("schema_version") != 1:
        return data
    data = dict(data, schema_version=SCHEMA_VERSION)
    models = data.get("models")
    if isinstance(models, dict) and "frame_edgetpu" in models:
        models = dict(models)
        data["variants"] = {"edgetpu": {"frame": models.pop("frame_edgetpu")}}
        data["models"] = models
    return data


def sha256_file(path, chunk=1 << 20):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while True:
            block = handle.read(chunk)
            if not block:
                break
            digest.update(block)
    return digest.hexdigest()


def atomic_write_text(path, text):
    """Write ``text`` to ``path`` via a temp file in the same directory and os.replace."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_bytes(path, data):
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file normal permissions
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


# -- strict (de)serialisation of the dataclasses above -------------------------------------------

_NESTED = {
    ("Manifest", "input"): InputSpec,
    ("Manifest", "tasks"): [TaskSpec],
    ("Manifest", "models"): {"": ModelFile},
    ("Manifest", "variants"): {"": {"": ModelFile}},
    ("ModelFile", "inputs"): [TensorSpec],
    ("ModelFile", "outputs"): [TensorSpec],
}

# field -> checker of a plain JSON value (after nested dataclasses are handled)
_INT = "int"
_FLOAT = "float"
_STR = "str"
_TYPES = {
    ("Manifest", "schema_version"): _INT, ("Manifest", "name"): _STR,
    ("Manifest", "backbone"): _STR, ("Manifest", "method"): _STR,
    ("Manifest", "sparsity"): (_FLOAT, None), ("Manifest", "created"): _STR,
    ("Manifest", "tool_versions"): {"": _STR}, ("Manifest", "clip_length"): _INT,
    ("Manifest", "default_stride"): _INT, ("Manifest", "feature_shape"): [_INT],
    ("InputSpec", "height"): _INT, ("InputSpec", "width"): _INT, ("InputSpec", "channels"): _INT,
    ("InputSpec", "colour_order"): _STR, ("InputSpec", "value_range"): [_FLOAT],
    ("InputSpec", "normalization"): dict,
    ("TaskSpec", "name"): _STR, ("TaskSpec", "kind"): _STR, ("TaskSpec", "labels"): [_STR],
    ("TaskSpec", "output"): _STR,
    ("ModelFile", "file"): _STR, ("ModelFile", "sha256"): _STR,
    ("ModelFile", "size_bytes"): _INT, ("ModelFile", "ops"): [_STR],
    ("TensorSpec", "name"): _STR, ("TensorSpec", "shape"): [_INT], ("TensorSpec", "dtype"): _STR,
    ("TensorSpec", "scale"): (_FLOAT, None), ("TensorSpec", "zero_point"): (_INT, None),
}


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


def _from_plain(cls, data, where, path=""):
    label = path or "top level"
    if not isinstance(data, dict):
        raise EdgekitError("%s: %s must be an object, got %s" % (where, label, type(data).__name__))
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise EdgekitError("%s: unknown key %s; this edgekit does not understand it (newer "
                           "manifest?), remove it or upgrade edgekit"
                           % (where, ", ".join(_join(path, k) for k in unknown)))
    kwargs = {}
    for name, fld in known.items():
        key_path = _join(path, name)
        if name not in data:
            if fld.default is fld.default_factory is _MISSING:
                raise EdgekitError("%s: missing key %s; regenerate the manifest with edgekit "
                                   "quantize" % (where, key_path))
            continue
        value = data[name]
        nested = _NESTED.get((cls.__name__, name))
        if nested is not None:
            kwargs[name] = _parse_nested(nested, value, where, key_path)
        else:
            kwargs[name] = _check(_TYPES[(cls.__name__, name)], value, where, key_path)
    return cls(**kwargs)


def _parse_nested(spec, value, where, key_path):
    if isinstance(spec, list):
        if not isinstance(value, list):
            raise EdgekitError("%s: %s must be a list" % (where, key_path))
        return [_from_plain(spec[0], v, where, "%s[%d]" % (key_path, i))
                for i, v in enumerate(value)]
    if isinstance(spec, dict):
        if not isinstance(value, dict):
            raise EdgekitError("%s: %s must be an object" % (where, key_path))
        return {k: _parse_nested(spec[""], v, where, _join(key_path, k)) for k, v in value.items()}
    return _from_plain(spec, value, where, key_path)


def _check(kind, value, where, key_path):
    def bad(expected):
        raise EdgekitError("%s: %s must be %s, got %r" % (where, key_path, expected, value))

    if isinstance(kind, tuple):  # (type, None): optional
        if value is None:
            return None
        return _check(kind[0], value, where, key_path)
    if isinstance(kind, list):
        if not isinstance(value, list):
            bad("a list")
        return [_check(kind[0], v, where, "%s[%d]" % (key_path, i)) for i, v in enumerate(value)]
    if isinstance(kind, dict) and "" in kind:
        if not isinstance(value, dict):
            bad("an object")
        return {k: _check(kind[""], v, where, _join(key_path, k)) for k, v in value.items()}
    if kind is dict:
        if not isinstance(value, dict):
            bad("an object")
        return dict(value)
    if kind == _INT:
        if isinstance(value, bool) or not isinstance(value, int):
            bad("an integer")
        return value
    if kind == _FLOAT:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            bad("a number")
        return float(value)
    if kind == _STR:
        if not isinstance(value, str):
            bad("a string")
        return value
    raise AssertionError("unknown type spec %r" % (kind,))  # pragma: no cover


def _join(path, key):
    return "%s.%s" % (path, key) if path else str(key)

