"""The runtime backends, one module each, found by name (Frigate's detector plugins, pycoral's
one factory).

Every module in this package other than ``base`` is a backend: its module name is its key and its
``BACKEND`` attribute the :class:`~edge.backends.base.Backend` subclass. Modules are imported only
when asked for, and a module whose import fails (its runtime library is not installed) disables
that backend alone, with the reason, while every other backend keeps working.

``--device`` strings name a backend (or an alias) and, after a colon, a backend-specific option:
``cpu``, ``edgetpu:usb``, ``coral:1``, ``gpu``.
"""

import importlib
import pkgutil

from edge.backends.base import Backend  # noqa: F401 - re-exported: edge.backends.Backend
from edge.errors import EdgekitError

# Familiar names for the same backends: what LiteRT, pycoral and Ultralytics users type.
ALIASES = {"cpu": "litert", "xnnpack": "litert", "coral": "edgetpu", "gpu": "litert_gpu"}
DEFAULT = "litert"
_NOT_BACKENDS = ("base",)


def backend_keys():
    """Every backend's key (module name), importable or not, sorted."""
    return sorted(name for _, name, is_pkg in pkgutil.iter_modules(__path__)
                  if not is_pkg and name not in _NOT_BACKENDS and not name.startswith("_"))


def canonical(name):
    """The backend key for ``name`` (an alias or a key); EdgekitError if there is none."""
    key = ALIASES.get((name or DEFAULT).strip().lower(), (name or DEFAULT).strip().lower())
    if key not in backend_keys():
        raise EdgekitError("unknown device %r; use one of: %s (aliases: %s), e.g. cpu, "
                           "edgetpu:usb, edgetpu:pci, edgetpu:N"
                           % (name, ", ".join(backend_keys()),
                              ", ".join("%s=%s" % kv for kv in sorted(ALIASES.items()))))
    return key


def backend_class(name):
    """The Backend subclass of ``name``; EdgekitError naming why if its module cannot load."""
    key = canonical(name)
    try:
        module = importlib.import_module("edge.backends." + key)
    except ImportError as exc:
        raise EdgekitError("backend %s is unavailable here: %s" % (key, exc))
    return module.BACKEND


def parse_device(device):
    """``--device`` text -> (backend key, options), e.g. "edgetpu:usb" -> ("edgetpu", {...})."""
    text = (device or "cpu").strip()
    name, _, option = text.partition(":")
    cls = backend_class(name)
    return cls.key, (cls.parse_option(option) if option else {})


def create(spec="cpu", delegate=None, **options):
    """A Backend for ``spec`` (a key, alias or ``--device`` string) with ``options``.

    ``delegate`` is the older spelling of a delegate library path: with ``cpu`` it selects the
    ``delegate`` backend, with another backend it overrides that backend's library.
    """
    key, parsed = parse_device(spec)
    parsed.update(options)
    if delegate:
        if key == DEFAULT:
            key = "delegate"
        parsed["library"] = delegate
    return backend_class(key)(**parsed)


def availability():
    """[(key, summary, reason or None)] for every backend: what ``edgekit devices check`` lists."""
    rows = []
    for key in backend_keys():
        try:
            cls = backend_class(key)
        except EdgekitError as exc:
            rows.append((key, "", str(exc)))
            continue
        rows.append((key, cls.summary, cls().probe()))
    return rows
