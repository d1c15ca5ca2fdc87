"""One small schema engine for every edgekit config file and the manifest.

Why in-house and not pydantic: the device side runs on board images that have numpy, OpenCV and
an interpreter on Python 3.9 and nothing else (pydantic-core is a compiled wheel not every image
has), and TOML errors must name the *line*, which a validator of already-parsed dicts cannot
know. Why strict: a config read once on a camera and then left alone must not half-parse -- a
typo'd key silently ignored is an alert that never fires. So, as Frigate does, unknown keys are
forbidden, and every problem in a file is collected and reported together, each as::

    serve.toml:14: cameras.pool.fps = -1 is out of range; allowed: 0.0..240.0

The schema is data. A :class:`Schema` maps key -> :class:`Key` (kind, default, range or
choices, help). Kinds: ``bool``, ``int``, ``number`` (int or float, read as float), ``str``,
``text`` (a non-empty string), ``list`` (of ``item``), ``table`` (a nested :class:`Schema`),
``tables`` (an array of tables), ``map`` (a table of free names -> ``item``) and ``any`` (left
to ``check``). ``check`` callables refine a value (raise :class:`Invalid`); a Schema's ``check``
sees the whole checked table for rules between keys. The result is plain nested dicts with
defaults filled in; callers build their own objects from it.

Where lines come from: :class:`TomlLines` finds a key path (``("alerts", 0, "label")``) in the
TOML text; JSON paths have no line. :class:`Wording` holds the message templates, so a file
whose callers or tests rely on established wording can keep it while sharing the engine.

Device side: standard library only, Python 3.9.
"""

import re

from edge.errors import EdgekitError

REQUIRED = object()  # default of a key that must be given
OMIT = object()      # default of an optional key that stays absent from the result


class Invalid(ValueError):
    """Raised by a ``check`` callable; ``message`` follows the key path (``= 3 must be ...``)."""


class Key(object):
    """One key: ``kind`` (see the module docstring), default, low/high, choices, help, item, schema.

    ``item``: the Key (or kind name, or Schema) of each element of a ``list``/``map``;
    ``schema``: the Schema of a ``table``/``tables``; ``names``/``names_help``: a regex the names
    of a ``map`` must match and what to say when one does not. ``nullable``: ``None`` (JSON
    null) is a valid value. ``allowed``: the text after ``allowed:`` when the generated one
    (range, choices) would not say enough; ``expected``: what to call the right type when the
    kind's name (``a table``) would not. An absent ``table`` whose default is a dict is checked
    as that dict, so its own keys' defaults are filled in.
    """

    def __init__(self, kind, default=REQUIRED, low=None, high=None, choices=None, help="",
                 item=None, schema=None, check=None, nullable=False, allowed=None, names=None,
                 names_help="", expected=None):
        self.kind = kind
        self.default = default
        self.low = low
        self.high = high
        self.choices = tuple(choices) if choices is not None else None
        self.help = help
        self.item = item
        self.schema = schema
        self.check = check
        self.nullable = nullable
        self.allowed = allowed
        self.expected = expected
        self.names = re.compile(names) if isinstance(names, str) else names
        self.names_help = names_help

    def allowed_text(self):
        if self.allowed is not None:
            return self.allowed
        if self.choices is not None:
            return " | ".join(str(c) for c in self.choices)
        if self.low is not None and self.high is not None:
            return "%s..%s" % (self.low, self.high)
        if self.low is not None:
            return ">= %s" % self.low
        if self.high is not None:
            return "<= %s" % self.high
        return self.help


class Schema(object):
    """The keys of one table (key -> :class:`Key`; unknown keys are problems).

    ``check(values, report, path)`` runs after the keys are checked, for rules between keys;
    ``values`` holds None for a key that failed its own check.
    """

    def __init__(self, keys, check=None):
        self.keys = dict(keys)
        self.check = check

    def validate(self, data, where="config", lines=None, wording=None):
        """The checked dict of ``data``, or :class:`SchemaError` listing all its problems."""
        report = Report(where, lines, wording)
        values = report.table(data, self, ())
        report.raise_if_any()
        return values


class Wording(object):
    """Message templates, filled with :meth:`str.format`.

    Fields: ``path`` (always), ``value`` (the repr of what was given), ``expected``, ``allowed``
    (range ``1..64``, choices ``a | b`` or the names rule), ``low``/``high``, ``choices``
    (``'a', 'b'``), ``message`` (a check's text), ``help`` (``; the key's help``) and
    ``help_paren`` (`` (the key's help)``); ``one``/``many`` get ``where``, ``count``,
    ``problem`` and ``problems``.
    """

    unknown = "{path} is not a known key; allowed: {allowed}"
    wrong_type = "{path} = {value} has the wrong type; expected {expected}"
    out_of_range = "{path} = {value} is out of range; allowed: {allowed}"
    not_allowed = "{path} = {value} is not allowed; allowed: {allowed}"
    missing = "{path} is missing{help}"
    invalid = "{path} {message}"
    bad_name = "{path}: the name is not allowed; allowed: {allowed}"
    one = "{problem}"
    many = "{where}: {count} problems:\n  {problems}"
    expected = {"bool": "true or false", "int": "an integer", "number": "a number",
                "str": "a string", "text": "a non-empty string", "list": "a list",
                "table": "a table", "tables": "an array of tables", "map": "a table"}

    def __init__(self, **templates):
        for name, template in templates.items():
            if not hasattr(Wording, name):
                raise TypeError("Wording has no template %r" % name)
            setattr(self, name, template)


class SchemaError(EdgekitError):
    """Every problem of one file; ``problems``: the formatted lines, in line order (file-level
    ones, without a line, first)."""

    def __init__(self, message, problems):
        super().__init__(message)
        self.problems = problems


def join_path(path):
    """``("alerts", 0, "label")`` -> ``alerts[0].label``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += "[%d]" % part
        else:
            text += ("." if text else "") + str(part)
    return text


class Report(object):
    """Collects the problems of one file while its tables are checked."""

    def __init__(self, where="config", lines=None, wording=None):
        self.where = where
        self.lines = lines
        self.wording = wording or Wording()
        self.problems = []  # formatted lines, in the order found
        self._lines = []     # their line numbers (0: none), to report in file order

    # -- problems ------------------------------------------------------------------------------

    def error(self, path, template, **fields):
        """Add one problem at ``path`` (a tuple); ``template`` is a Wording field or a string."""
        text = getattr(self.wording, template, template)
        fields.setdefault("path", join_path(path))
        line = self.lines.find(path) if self.lines is not None else None
        prefix = "%s:%d" % (self.where, line) if line else self.where
        self.problems.append("%s: %s" % (prefix, text.format(**fields)))
        self._lines.append(line or 0)

    def invalid(self, path, message, value=None):
        self.error(path, "invalid", message=message, value=repr(value))

    def raise_if_any(self):
        if not self.problems:
            return
        ordered = [p for _, p in sorted(zip(self._lines, self.problems), key=lambda x: x[0])]
        fields = dict(where=self.where, count=len(ordered), problem=ordered[0],
                      problems="\n  ".join(ordered))
        template = self.wording.one if len(self.problems) == 1 else self.wording.many
        message = template.format(**fields)
        raise SchemaError(message, ordered)

    # -- checking ------------------------------------------------------------------------------

    def table(self, data, schema, path):
        """The checked dict of ``data`` against ``schema``; None when it is not a table."""
        if not isinstance(data, dict):
            self.error(path, "wrong_type", value=repr(data),
                       expected=self.wording.expected["table"])
            return None
        out = {}
        for key in data:
            if key not in schema.keys:
                self.error(path + (key,), "unknown", allowed=", ".join(sorted(schema.keys)))
        for key, spec in schema.keys.items():
            if key in data:
                out[key] = self.value(data[key], spec, path + (key,))
            elif spec.default is REQUIRED:
                self.error(path + (key,), "missing", help="; " + spec.help if spec.help else "",
                           help_paren=" (%s)" % spec.help if spec.help else "")
                out[key] = None
            elif spec.kind == "table" and isinstance(spec.default, dict):
                out[key] = self.value(_copy(spec.default), spec, path + (key,))
            elif spec.default is not OMIT:
                out[key] = _copy(spec.default)
        if schema.check is not None:
            schema.check(out, self, path)
        return out

    def value(self, value, spec, path):
        """The checked ``value`` of one key; None (after reporting) when it is not allowed."""
        if value is None and getattr(spec, "nullable", False):
            return None
        if isinstance(spec, Schema):
            return self.table(value, spec, path)
        if isinstance(spec, str):
            spec = Key(spec)
        kind, given = spec.kind, value
        if not _is_kind(value, kind):
            expected = spec.expected or self.wording.expected.get(kind, kind)
            if kind == "list" and spec.item is not None and not spec.expected:
                item = spec.item if isinstance(spec.item, str) else getattr(spec.item, "kind", "")
                expected = "a list of %s" % _plural(self.wording.expected.get(item, item))
            self.error(path, "wrong_type", value=repr(value), expected=expected)
            return None
        if kind == "number":
            value = float(value)
        elif kind == "list":
            value = [self.value(v, spec.item, path + (i,)) if spec.item is not None else v
                     for i, v in enumerate(value)]
        elif kind == "table":
            value = self.table(value, spec.schema, path) if spec.schema is not None else dict(value)
        elif kind == "tables":
            value = [self.table(v, spec.schema, path + (i,)) for i, v in enumerate(value)]
        elif kind == "map":
            value = self._map(value, spec, path)
        if spec.choices is not None and value not in spec.choices:
            self.error(path, "not_allowed", value=repr(given), allowed=spec.allowed_text(),
                       choices=", ".join(repr(c) for c in spec.choices))
            return None
        if (spec.low is not None and value < spec.low) or \
                (spec.high is not None and value > spec.high):
            self.error(path, "out_of_range", value=repr(given), allowed=spec.allowed_text(),
                       low=spec.low, high=spec.high)
            return None
        if spec.check is not None:
            try:
                value = spec.check(value)
            except Invalid as exc:
                self.invalid(path, str(exc), given)
                return None
        return value

    def _map(self, value, spec, path):
        out = {}
        for name, item in value.items():
            if spec.names is not None and not spec.names.match(name):
                self.error(path + (name,), "bad_name", allowed=spec.names_help)
                continue
            out[name] = self.value(item, spec.item, path + (name,)) if spec.item is not None \
                else item
        return out


def _is_kind(value, kind):
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "str":
        return isinstance(value, str)
    if kind == "text":
        return isinstance(value, str) and bool(value.strip())
    if kind in ("list", "tables"):
        return isinstance(value, list)
    if kind in ("table", "map"):
        return isinstance(value, dict)
    if kind == "any":
        return True
    raise ValueError("unknown schema kind %r" % (kind,))


def _plural(expected):
    """"an integer" -> "integers", for "a list of integers"."""
    words = expected.split(" ", 1)
    noun = words[1] if len(words) == 2 and words[0] in ("a", "an") else expected
    return noun if noun.endswith("s") or " or " in noun else noun + "s"


def _copy(default):
    return list(default) if isinstance(default, list) else (
        dict(default) if isinstance(default, dict) else default)


class TomlLines(object):
    """Finds the line of a key path in TOML text, for error messages.

    Handles ``[a.b]`` tables, ``[[a]]`` arrays of tables (``("a", 0, "k")``), dotted and quoted
    keys. A path that is not written anywhere (a missing key, a value inside an inline table)
    gets the line of its nearest written ancestor, so the user lands where to add or fix it.
    """

    _HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?")
    _KEY = re.compile(r"^\s*((?:\"[^\"]*\"|'[^']*'|[A-Za-z0-9_-]+)"
                      r"(?:\s*\.\s*(?:\"[^\"]*\"|'[^']*'|[A-Za-z0-9_-]+))*)\s*=")
    _PART = re.compile(r"\"([^\"]*)\"|'([^']*)'|([A-Za-z0-9_-]+)")

    def __init__(self, text):
        self.entries = []  # (line number, full key path tuple)
        table, arrays, counts = (), {}, {}
        in_string = False
        for number, line in enumerate(text.splitlines(), 1):
            if line.count('"""') % 2 or line.count("'''") % 2:
                in_string = not in_string  # a multi-line string: its lines hold no keys
                continue
            if in_string:
                continue
            header = self._HEADER.match(line)
            if header:
                parts = self._parts(header.group(2))
                table = self._indexed(parts, arrays)
                if header.group(1) == "[[":  # one more element of the array at ``table``
                    counts[table] = counts.get(table, -1) + 1
                    arrays[parts] = table + (counts[table],)
                    table = arrays[parts]
                self.entries.append((number, table))
                continue
            key = self._KEY.match(line)
            if key:
                self.entries.append((number, table + self._parts(key.group(1))))

    def _parts(self, text):
        return tuple(m.group(1) if m.group(1) is not None else
                     (m.group(2) if m.group(2) is not None else m.group(3))
                     for m in self._PART.finditer(text))

    @staticmethod
    def _indexed(parts, arrays):
        """``[a.b]`` after ``[[a]]`` belongs to the last ``a`` element: ``("a", n, "b")``."""
        for cut in range(len(parts) - 1, 0, -1):
            if parts[:cut] in arrays:
                return arrays[parts[:cut]] + parts[cut:]
        return parts

    def find(self, path):
        path = tuple(path)
        while path:
            for number, full in self.entries:
                if full[:len(path)] == path:
                    return number
            path = path[:-1]
        return None
