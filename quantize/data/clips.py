"""Labelled swimmer clips on disk: ``<action>_<identity>_<n>.<suffix>`` plus ``labels.json``.

``labels.json`` (``{"actions": [...], "identities": [...]}``) fixes the class order, so indices
mean the same thing in training, conversion and on the camera. Scanning and loading never abort on
one bad file: malformed names, unknown classes, short or corrupt videos are collected in
``skipped`` with a reason and the caller decides how loudly to report them. Nothing here prints.
File names are parsed by :mod:`edge.clipnames`, shared with ``edgekit enroll``.
"""

import json
import os
from dataclasses import dataclass, field
from typing import List, Tuple

import numpy as np

from edge.atomic import write_json
from edge.clipnames import PATTERN, VIDEO_SUFFIXES, parse_clip_name, scan_clip_names  # noqa: F401
from edge.errors import EdgekitError
from edge.video import read_clip

LABELS_FILE = "labels.json"


@dataclass
class ClipLabels:
    """Class names in index order for the two swimmer tasks."""

    actions: list
    identities: list

    @classmethod
    def load(cls, folder):
        path = os.path.join(os.fspath(folder), LABELS_FILE)
        if not os.path.isfile(path):
            raise EdgekitError("%s not found; a clip folder needs a labels.json like "
                               '{"actions": ["breaststroke", ...], "identities": ["swimmer1", ...]}'
                               % path)
        try:
            with open(path, encoding="utf-8") as handle:
                data = json.load(handle)
        except (ValueError, UnicodeDecodeError) as exc:
            raise EdgekitError("%s is not valid JSON (%s); fix or regenerate it" % (path, exc))
        if not isinstance(data, dict):
            raise EdgekitError("%s must be a JSON object with keys \"actions\" and \"identities\""
                               % path)
        lists = {}
        for key in ("actions", "identities"):
            lists[key] = _check_names(data.get(key), key, path)
        return cls(actions=lists["actions"], identities=lists["identities"])

    def save(self, folder):
        """Write labels.json atomically (temp file + rename)."""
        folder = os.fspath(folder)
        for key, names in (("actions", self.actions), ("identities", self.identities)):
            _check_names(names, key, os.path.join(folder, LABELS_FILE))
        os.makedirs(folder, exist_ok=True)
        write_json(os.path.join(folder, LABELS_FILE),
                   {"actions": list(self.actions), "identities": list(self.identities)})


def _check_names(names, key, path):
    """Validate one class list: non-empty, unique strings without '_' (the file-name separator)."""
    if not isinstance(names, list) or not names:
        raise EdgekitError("%s: \"%s\" must be a non-empty list of class names" % (path, key))
    for name in names:
        if not isinstance(name, str) or not name:
            raise EdgekitError("%s: \"%s\" contains %r; class names must be non-empty strings"
                               % (path, key, name))
        if "_" in name:
            raise EdgekitError("%s: class name %r in \"%s\" contains '_', which separates fields "
                               "in clip file names; rename it" % (path, name, key))
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise EdgekitError("%s: \"%s\" lists %s more than once" % (path, key, ", ".join(duplicates)))
    return list(names)


@dataclass
class ClipItem:
    path: str
    action: int
    identity: int


@dataclass
class ClipIndex:
    labels: ClipLabels
    items: List[ClipItem] = field(default_factory=list)
    skipped: List[Tuple[str, str]] = field(default_factory=list)


@dataclass
class ClipArrays:
    x: np.ndarray
    action: np.ndarray
    identity: np.ndarray
    paths: list
    skipped: list


def scan_clip_folder(folder):
    """Index the labelled clips of ``folder`` (sorted by name, so the order is reproducible)."""
    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        raise EdgekitError("clip folder %s does not exist; generate one with "
                           "'edgekit data synth --kind swim --out %s'" % (folder, folder))
    labels = ClipLabels.load(folder)
    action_ix = {name: i for i, name in enumerate(labels.actions)}
    identity_ix = {name: i for i, name in enumerate(labels.identities)}
    clips, skipped = scan_clip_names(folder, ignore=(LABELS_FILE,))
    index = ClipIndex(labels=labels, skipped=skipped)
    for path, (action, identity, _) in clips:
        if action not in action_ix:
            index.skipped.append((path, "action %r is not in labels.json actions %s"
                                  % (action, labels.actions)))
        elif identity not in identity_ix:
            index.skipped.append((path, "identity %r is not in labels.json identities %s"
                                  % (identity, labels.identities)))
        else:
            index.items.append(ClipItem(path, action_ix[action], identity_ix[identity]))
    if not index.items:
        raise EdgekitError("no usable clips in %s (%d files skipped%s); expected files named "
                           "%s with classes from labels.json"
                           % (folder, len(index.skipped),
                              (", e.g. " + index.skipped[0][1]) if index.skipped else "", PATTERN))
    return index


def load_clips(index, length, stride=1, size=None):
    """Decode every indexed clip to uint8 (N, length, H, W, 3); short/corrupt ones are skipped.

    Padding a short clip would teach the temporal block that swimmers freeze, so short clips are
    dropped and reported instead. Without ``size`` all clips must share one native size.
    ``skipped`` holds only what failed here; files rejected by the scan stay in ``index.skipped``
    (so a caller reporting both never lists a file twice).
    """
    xs, actions, identities, paths = [], [], [], []
    skipped = []
    for item in index.items:
        try:
            clip = read_clip(item.path, length, stride=stride, size=size)
        except EdgekitError as exc:
            skipped.append((item.path, str(exc)))
            continue
        if xs and clip.shape != xs[0].shape:
            skipped.append((item.path, "frame size %dx%d differs from %dx%d of the first clip; "
                            "pass a size to resize" % (clip.shape[1], clip.shape[2],
                                                       xs[0].shape[1], xs[0].shape[2])))
            continue
        xs.append(clip)
        actions.append(item.action)
        identities.append(item.identity)
        paths.append(item.path)
    if not xs:
        raise EdgekitError("none of the %d clips could be loaded with %d frames (stride %d); "
                           "first problem: %s" % (len(index.items), length, stride,
                                                  skipped[0][1] if skipped else "unknown"))
    return ClipArrays(x=np.stack(xs), action=np.asarray(actions, dtype=np.int32),
                      identity=np.asarray(identities, dtype=np.int32), paths=paths,
                      skipped=skipped)
