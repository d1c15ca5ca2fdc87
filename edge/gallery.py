"""Open-set re-identification: a gallery of identity embeddings and cosine matching.

The identity softmax only knows the swimmers it was trained on; a new swimmer would be forced onto
one of them. The embedding head lets a camera recognise people enrolled after training
(``edgekit enroll``) and say ``unknown`` for anyone whose best cosine similarity to every
enrolled embedding stays below a threshold.

On disk: ``gallery.npz`` holds ``embeddings`` (N, D) float32, L2-normalised, and ``labels`` (N,)
int32 indexes into the names; ``gallery.json`` beside it holds the names, the threshold, the
embedding size and the model it was made with. Both are written atomically.
"""

import io
import json
import os

import numpy as np

from edge.atomic import write_bytes, write_text
from edge.errors import EdgekitError

UNKNOWN = "unknown"
DEFAULT_THRESHOLD = 0.5


def l2_normalize(vectors, eps=1e-12):
    vectors = np.asarray(vectors, np.float32)
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return vectors / np.maximum(norms, eps)


class Match(object):
    """The result of matching one embedding: ``name`` is ``unknown`` below the threshold."""

    __slots__ = ("name", "similarity", "nearest")

    def __init__(self, name, similarity, nearest):
        self.name = name
        self.similarity = similarity
        self.nearest = nearest  # the closest enrolled identity, even when name is unknown

    def to_dict(self):
        return {"name": self.name, "similarity": round(self.similarity, 6),
                "nearest": self.nearest}

    def __repr__(self):
        return "Match(%r, %.3f, nearest=%r)" % (self.name, self.similarity, self.nearest)


class Gallery(object):
    def __init__(self, names, embeddings, labels, threshold=DEFAULT_THRESHOLD, model=""):
        self.names = list(names)
        self.embeddings = l2_normalize(embeddings)
        self.labels = np.asarray(labels, np.int32)
        self.threshold = float(threshold)
        self.model = model
        if self.embeddings.ndim != 2 or len(self.embeddings) != len(self.labels):
            raise EdgekitError("gallery embeddings must be (N, D) with one label each")
        if len(self.labels) and (self.labels.min() < 0 or self.labels.max() >= len(self.names)):
            raise EdgekitError("gallery labels point outside its %d names" % len(self.names))
        self._scores = np.empty(len(self.labels), np.float32)  # reused by every match

    @property
    def dim(self):
        return int(self.embeddings.shape[1])

    @classmethod
    def from_samples(cls, samples, threshold=DEFAULT_THRESHOLD, model=""):
        """``samples``: iterable of (name, embedding)."""
        names, vectors, labels = [], [], []
        for name, vector in samples:
            if name not in names:
                names.append(name)
            vectors.append(np.asarray(vector, np.float32).ravel())
            labels.append(names.index(name))
        if not vectors:
            raise EdgekitError("no embeddings to build a gallery from")
        return cls(names, np.stack(vectors), labels, threshold, model)

    def match(self, embedding, threshold=None):
        """Nearest enrolled embedding by cosine similarity; ``unknown`` below the threshold."""
        threshold = self.threshold if threshold is None else float(threshold)
        vector = np.asarray(embedding, np.float32).ravel()
        if vector.shape[0] != self.dim:
            raise EdgekitError("embedding has %d values but the gallery holds %d-dim embeddings; "
                               "enroll again with this model" % (vector.shape[0], self.dim))
        norm = float(np.linalg.norm(vector)) or 1.0
        np.dot(self.embeddings, vector, out=self._scores)
        best = int(np.argmax(self._scores))
        similarity = float(self._scores[best]) / norm
        nearest = self.names[int(self.labels[best])]
        return Match(nearest if similarity >= threshold else UNKNOWN, similarity, nearest)

    # -- files ---------------------------------------------------------------------------------

    @staticmethod
    def sidecar(path):
        return os.path.splitext(os.fspath(path))[0] + ".json"

    def save(self, path):
        path = os.fspath(path)
        if not path.endswith(".npz"):
            raise EdgekitError("gallery file %s must end in .npz" % path)
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        buffer = io.BytesIO()
        np.savez(buffer, embeddings=self.embeddings, labels=self.labels)
        write_bytes(path, buffer.getvalue())
        meta = {"names": self.names, "threshold": self.threshold, "dim": self.dim,
                "count": int(len(self.labels)), "model": self.model,
                "per_identity": {n: int((self.labels == i).sum())
                                 for i, n in enumerate(self.names)}}
        write_text(self.sidecar(path), json.dumps(meta, indent=2) + "\n")
        return path

    @classmethod
    def load(cls, path):
        """Read ``path`` (.npz) and its ``.json`` sidecar; any problem is one EdgekitError line.

        The .npz is checked first because it is what the user named (``--gallery FILE.npz``): a
        corrupt, truncated or foreign .npz must be reported as such, not as a missing sidecar.
        """
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise EdgekitError("gallery file %s does not exist; build it with edgekit enroll"
                               % path)
        embeddings, labels = _read_arrays(path)
        meta = _read_meta(path, cls.sidecar(path))
        try:
            return cls(meta["names"], embeddings, labels, meta["threshold"], meta.get("model", ""))
        except (EdgekitError, ValueError, TypeError) as exc:
            raise EdgekitError("gallery %s does not hold together (%s); rebuild it with edgekit "
                               "enroll" % (path, exc))


def _read_arrays(path):
    """``embeddings`` and ``labels`` of a gallery .npz, or an EdgekitError saying what is wrong."""
    rebuild = "rebuild it with edgekit enroll"
    with open(path, "rb") as handle:
        head = handle.read(4)
    if head[:2] != b"PK":  # np.load would try to unpickle it and talk about allow_pickle
        raise EdgekitError("gallery %s is corrupt or not an .npz file (%s); %s"
                           % (path, "it is empty" if not head else "no zip header", rebuild))
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [k for k in ("embeddings", "labels") if k not in data.files]
            if missing:
                raise EdgekitError("%s is an .npz but not an edgekit gallery (no %s array; it "
                                   "holds %s); %s" % (path, " or ".join(missing),
                                                      ", ".join(data.files) or "nothing", rebuild))
            return data["embeddings"], data["labels"]
    except EdgekitError:
        raise
    except Exception as exc:  # truncated or damaged zip: BadZipFile, EOFError, zlib.error, ...
        raise EdgekitError("gallery %s is corrupt or not an .npz file (%s: %s); %s"
                           % (path, type(exc).__name__, exc, rebuild))


def _read_meta(path, meta_path):
    """The sidecar's names and threshold; it is written with the .npz and must travel with it."""
    if not os.path.isfile(meta_path):
        raise EdgekitError("gallery %s has no %s beside it (the names and threshold); copy both "
                           "files edgekit enroll wrote, or rebuild the gallery" % (path, meta_path))
    try:
        with open(meta_path, "r", encoding="utf-8") as handle:
            meta = json.load(handle)
    except (OSError, ValueError) as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise EdgekitError("gallery sidecar %s is corrupt (%s); rebuild the gallery with edgekit "
                           "enroll" % (meta_path, exc))
    if not isinstance(meta, dict) or not isinstance(meta.get("names"), list) \
            or isinstance(meta.get("threshold"), bool) \
            or not isinstance(meta.get("threshold"), (int, float)):
        raise EdgekitError("gallery sidecar %s lacks a names list or a numeric threshold; rebuild "
                           "the gallery with edgekit enroll" % meta_path)
    return meta
