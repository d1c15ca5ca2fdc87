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
        path = os.fspath(path)
        meta_path = cls.sidecar(path)
        for needed in (path, meta_path):
            if not os.path.isfile(needed):
                raise EdgekitError("gallery file %s does not exist; build it with edgekit enroll"
                                   % needed)
        try:
            with np.load(path, allow_pickle=False) as data:
                embeddings, labels = data["embeddings"], data["labels"]
            with open(meta_path, "r", encoding="utf-8") as handle:
                meta = json.load(handle)
            names, threshold = meta["names"], meta["threshold"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise EdgekitError("gallery %s is corrupt (%s); rebuild it with edgekit enroll"
                               % (path, exc))
        return cls(names, embeddings, labels, threshold, meta.get("model", ""))
