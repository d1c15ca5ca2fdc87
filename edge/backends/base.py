"""What a runtime backend is: one way of running a model file on one kind of hardware.

Why one class per backend: knowledge of an accelerator (which library to load, which model file
it needs, what its options mean, how to tell it is missing, where its nodes ran) used to be spread
over the interpreter factory, devices.toml, the runner, the bench and the checks. A backend keeps
all of it in one module under ``edge/backends/``, found by the registry (:mod:`edge.backends`), so
adding an accelerator is one new file and its tests.

A backend's :meth:`Backend.load` returns an *interpreter*: an object with the part of LiteRT's
``Interpreter`` API that edgekit uses (``get_input_details``, ``get_output_details``,
``get_signature_list``/``get_signature_runner``, ``tensor(i)``, ``get_tensor``, ``set_tensor``,
``invoke``, ``reset_all_variables``). LiteRT backends return LiteRT's own; a backend on another
runtime wraps its session in that shape. The model session, the bench and the tools therefore
never ask which runtime they got (pycoral's ``make_interpreter`` shape).

One promise goes beyond LiteRT's own API: the array ``tensor(i)()`` gives stays valid across
``invoke()`` calls (a bound buffer), so the model session takes each hot-path tensor's array once
instead of once per frame. ONNX Runtime and TensorRT interpreters bind host buffers anyway; LiteRT
interpreters are loaded so (:func:`edge.backends.litert.hold_views`).
"""

import re

from edge.errors import EdgekitError


class Option(object):
    """One backend option as devices.toml (``backend_options``) and ``--device`` spell it.

    ``kind``: "str" or "int"; ``pattern``: a regular expression a string must match in full;
    ``allowed``: what to tell a user who got it wrong.
    """

    def __init__(self, kind, allowed, pattern=None):
        self.kind = kind
        self.allowed = allowed
        self.pattern = re.compile(pattern) if pattern else None

    def check(self, backend, name, value):
        ok = isinstance(value, str) if self.kind == "str" else (
            isinstance(value, int) and not isinstance(value, bool))
        if ok and self.pattern is not None and not self.pattern.fullmatch(value):
            ok = False
        if not ok:
            raise EdgekitError("backend %s: option %s = %r is not allowed; allowed: %s"
                               % (backend, name, value, self.allowed))
        return value


class Backend(object):
    """Base of every backend. Subclasses set the class attributes and implement :meth:`load`.

    ``key``: the registry name (the module's name); ``summary``: one line for
    ``edgekit devices check``; ``variant``: which model files of a model directory it runs
    (manifest ``models`` for "tflite", else ``variants.<variant>``); ``options``: name ->
    :class:`Option`; ``placement_label``: what op-placement reports call its delegate.
    """

    key = None
    summary = ""
    variant = "tflite"
    options = {}
    placement_label = "XNNPACK"

    def __init__(self, **options):
        unknown = sorted(set(options) - set(self.options))
        if unknown:
            raise EdgekitError("backend %s has no option %s; its options: %s"
                               % (self.key, ", ".join(unknown),
                                  ", ".join(sorted(self.options)) or "none"))
        self.config = {name: self.options[name].check(self.key, name, value)
                       for name, value in options.items() if value is not None}

    @classmethod
    def parse_option(cls, text):
        """Options from the part of ``--device`` after the colon (``edgetpu:usb``)."""
        raise EdgekitError("device %s takes no ':%s'; use plain %s" % (cls.key, text, cls.key))

    def probe(self):
        """None when this backend can run here, else the reason it cannot (one line)."""
        return None

    def load(self, path, threads=None):
        """An allocated interpreter (see the module docstring) for the model file ``path``."""
        raise NotImplementedError

    def placement(self, interpreter):
        """Where the loaded model's nodes run (see :mod:`edge.bench.placement`)."""
        from edge.bench.placement import op_details, placement
        return placement(op_details(interpreter), self.placement_label)

    def describe(self):
        """``key`` plus its options, e.g. ``edgetpu device=usb``."""
        extra = " ".join("%s=%s" % item for item in sorted(self.config.items()))
        return ("%s %s" % (self.key, extra)).strip()

    def identity(self):
        """What makes two instances load the same thing (the model-session cache key)."""
        return (self.key, tuple(sorted(self.config.items())))
