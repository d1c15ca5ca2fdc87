"""The serve config's validation engine: :class:`Key` and the functions that check a TOML table
against a schema of Keys, collecting every error with its key path.

Why separate from the schema data (:mod:`edge.serve.config`): the engine knows nothing about the
daemon, only kinds of values (int, number, str, name, bool, list, source, regions, section), so
it can be shared by other config files as it stands; the schema stays plain data beside the
daemon it describes.
"""

import os
import re

REQUIRED = object()
NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class Key(object):
    """One config key: ``kind`` (int, number, str, name, bool, list, source, regions, section),
    its default (:data:`REQUIRED` if none), an optional range or choices, and help for errors."""

    def __init__(self, kind, default=REQUIRED, low=None, high=None, choices=None, help=""):
        self.kind = kind
        self.default = default
        self.low = low
        self.high = high
        self.choices = choices
        self.help = help


def check_section(raw, name, schema, errors, required=False):
    """Top-level section ``name`` of ``raw`` checked (defaults filled in when it is absent)."""
    if name not in raw:
        if required:
            errors.append("%s: required section missing" % name)
            return {}
        return check_table({}, name, schema, errors) or {}
    return check_table(raw[name], name, schema, errors) or {}


def check_table(table, key_path, schema, errors):
    """``table`` checked against ``schema``: a dict with every default filled in, or None if it
    is not a table. Each problem is appended to ``errors`` as "key.path: what is allowed"."""
    if not isinstance(table, dict):
        errors.append("%s: must be a table, got %s" % (key_path, type_name(table)))
        return None
    out = {}
    for key in sorted(set(table) - set(schema)):
        errors.append("%s.%s: unknown key (allowed: %s)" % (key_path, key, ", ".join(schema)))
    for key, spec in schema.items():
        full = "%s.%s" % (key_path, key)
        if key not in table:
            if spec.default is REQUIRED:
                errors.append("%s: required key missing%s" % (full, helpful(spec)))
            out[key] = None if spec.default is REQUIRED else spec.default
            continue
        value = check_value(table[key], spec, full, errors)
        out[key] = value
    return out


def check_value(value, spec, full, errors):
    """One value against its :class:`Key`; the checked value, or None after recording why not."""
    def bad(expected):
        errors.append("%s: must be %s, got %r" % (full, expected, value))
        return None

    kind = spec.kind
    if kind == "bool":
        return value if isinstance(value, bool) else bad("true or false")
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            return bad("an integer")
    elif kind == "number":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return bad("a number")
        value = float(value)
    elif kind in ("str", "name"):
        if not isinstance(value, str) or not value.strip():
            return bad("a non-empty string")
        if kind == "name" and not NAME_RE.match(value):
            return bad("a name of letters, digits, _ and - (1-64 chars)")
    elif kind == "source":
        if isinstance(value, bool) or not isinstance(value, (int, str)) or value == "":
            return bad("a camera index (0), a file path or an rtsp:// / http:// URL")
        value = str(value)
    elif kind == "list":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            return bad("a list of strings")
        return list(value)
    elif kind == "section":
        return value  # checked by the caller against its own schema
    elif kind == "regions":
        return _regions(value, full, errors)
    if spec.choices is not None and value not in spec.choices:
        return bad("one of %s" % ", ".join(repr(c) for c in spec.choices))
    if spec.low is not None and value < spec.low or spec.high is not None and value > spec.high:
        return bad("between %s and %s" % (spec.low, spec.high))
    return value


def _regions(value, full, errors):
    if not isinstance(value, dict) or not value:
        errors.append("%s: must be a table of name = [x, y, w, h], got %r" % (full, value))
        return None
    regions = {}
    for name, box in value.items():
        where = "%s.%s" % (full, name)
        if not NAME_RE.match(name):
            errors.append("%s: region names may use letters, digits, _ and - (1-64 chars)"
                          % where)
            continue
        ok = (isinstance(box, list) and len(box) == 4
              and all(isinstance(v, int) and not isinstance(v, bool) for v in box))
        if not ok or box[0] < 0 or box[1] < 0 or box[2] < 1 or box[3] < 1:
            errors.append("%s: must be [x, y, w, h] integers with x, y >= 0 and w, h >= 1, "
                          "got %r" % (where, box))
            continue
        regions[name] = tuple(box)
    return regions


def helpful(spec):
    return " (%s)" % spec.help if spec.help else ""


def resolve_path(base, path):
    """Relative paths in the config are relative to the config file, not the working dir."""
    path = os.path.expanduser(path)
    return path if os.path.isabs(path) else os.path.normpath(os.path.join(base, path))


def type_name(value):
    return {dict: "a table", list: "an array", str: "a string", bool: "a boolean",
            int: "an integer", float: "a number"}.get(type(value), type(value).__name__)
