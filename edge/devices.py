"""``devices.toml``: the benchmark targets, read strictly.

One ``[devices.NAME]`` table per target. Every key, its type and what is allowed is in
:data:`KEYS` (:mod:`edge.schema` Keys, the engine of every edgekit config file); the shipped
``devices.toml`` documents them in comments. Like Frigate's config, a file that half-parses is
refused: every unknown key, wrong type or impossible value in the file is reported together in
one :class:`EdgekitError`, each naming the file, the line (when it can be found), the key path
and what is allowed, e.g.::

    devices.toml:14: devices.jetson.port = 70000 is out of range; allowed: 1..65535

Which file is read: ``--devices FILE``, else ``$EDGEKIT_DEVICES``, else ``./devices.toml``, else
the one shipped beside the ``edge`` package (the repository's).

Host side only (the targets never read it), but kept TensorFlow-free and Python 3.9 like all of
``edge/``.
"""

import os
import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional

from edge import backends
from edge.errors import EdgekitError
from edge.schema import OMIT, Invalid, Key, Report, Schema, TomlLines

try:  # Python 3.11+
    import tomllib as _toml
except ImportError:  # pragma: no cover - Python < 3.11
    try:
        import tomli as _toml
    except ImportError:
        _toml = None

DEVICES_FILE = "devices.toml"
ENV_VAR = "EDGEKIT_DEVICES"
TRANSPORTS = ("local", "ssh")
POWER_SAMPLERS = ("none", "tegrastats")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
# Keys of the first devices.toml format, and what replaced them.
REPLACED = {
    "delegate": "backend = \"litert\" | \"edgetpu\" | \"litert_gpu\" | \"delegate\" (with "
                "backend_options = { library = \"PATH\" })",
    "delegate_path": "backend_options = { library = \"PATH\" }",
    "edgetpu_device": "backend = \"edgetpu\" with backend_options = { device = \"usb\" }",
    "variant": "nothing: the backend says which model variant it runs",
}


def _absolute(value):
    if not value.startswith("/"):
        raise Invalid("= %r must be an absolute path" % value)
    return value


def _table_of(expected, types):
    """A check: a table whose values are all of ``types`` (a TOML table of free names)."""
    def check(value):
        if not isinstance(value, dict) or not all(
                isinstance(v, types) and not isinstance(v, bool) for v in value.values()):
            raise Invalid("= %r has the wrong type; expected %s" % (value, expected))
        return dict(value)
    return check


# Every key of a [devices.NAME] table, as edge.schema Keys: adding a key is one line here (and
# its field in Device, which holds the defaults: OMIT leaves an absent key absent, so the rules
# between keys in _device can tell "not given" from "given").
KEYS = {
    "description": Key("str", OMIT, help="free text"),
    "transport": Key("str", OMIT, choices=TRANSPORTS),
    "host": Key("str", OMIT, help="a host name, an address or a ~/.ssh/config Host alias (ssh "
                                  "only)"),
    "user": Key("str", OMIT, help="the login name on the target (ssh only; default: "
                                  "~/.ssh/config or yours)"),
    "port": Key("int", OMIT, 1, 65535, help="ssh only; default: ~/.ssh/config or 22"),
    "identity_file": Key("str", OMIT, help="path of the private key (ssh only; ~ is expanded)"),
    "ssh_options": Key("list", OMIT, item="str",
                       help="a list of \"Option=value\" strings passed as ssh -o (ssh only)"),
    "connect_timeout": Key("int", OMIT, 1, 600, help="seconds"),
    "python": Key("str", OMIT, help="the Python on the target (default: python3 over ssh, this "
                                    "Python locally)"),
    "workdir": Key("str", OMIT, check=_absolute,
                   help="an absolute directory on the target for the temporary bench folder"),
    "keep_workdir": Key("bool", OMIT),
    "threads": Key("int", OMIT, 1, 256, help="CPU threads for the interpreter"),
    "backend": Key("str", OMIT, help="a backend of edge/backends (edgekit devices check lists "
                                     "them) or an alias: cpu, coral, gpu"),
    "backend_options": Key("any", OMIT, check=_table_of("a table of strings and integers: the "
                                                        "backend's options", (str, int)),
                           help="the backend's options, e.g. { device = \"usb\" } for edgetpu"),
    "power": Key("str", OMIT, choices=POWER_SAMPLERS),
    "power_interval_ms": Key("int", OMIT, 10, 10000,
                             help="sampling interval of the power sampler"),
    "env": Key("any", OMIT, check=_table_of("a table of strings: environment variables for the "
                                            "target's Python", str),
               help="a table of environment variables (strings) for the target's Python"),
    "emulated": Key("bool", OMIT, help="an emulated CPU (qemu): every output labels its latency"),
}


def _explain(spec):
    """A wrong type also says what the key is for and its range, as devices.toml always did
    (``expected an integer: CPU threads for the interpreter, 1..256``)."""
    rule = spec.allowed_text() if spec.choices or spec.low is not None else ""
    text = ", ".join(part for part in (spec.help, rule) if part)
    base = {"str": "a string", "int": "an integer", "bool": "true or false",
            "list": "a list of strings"}.get(spec.kind)
    return "%s: %s" % (base, text) if base and text else None


for _spec in KEYS.values():
    _spec.expected = _spec.expected or _explain(_spec)
DEVICE_SCHEMA = Schema(KEYS)
SSH_ONLY = ("host", "user", "port", "identity_file", "ssh_options")


@dataclass
class Device:
    """One benchmark target as configured (see :data:`KEYS`)."""

    name: str
    source: str = ""                    # the file it came from
    description: str = ""
    transport: str = "local"
    host: Optional[str] = None
    user: Optional[str] = None
    port: Optional[int] = None
    identity_file: Optional[str] = None
    ssh_options: List[str] = field(default_factory=list)
    connect_timeout: int = 10
    python: str = ""
    workdir: str = "/tmp"
    keep_workdir: bool = False
    emulated: bool = False
    threads: Optional[int] = None
    backend: str = backends.DEFAULT
    backend_options: Dict[str, object] = field(default_factory=dict)
    power: str = "none"
    power_interval_ms: int = 100
    env: Dict[str, str] = field(default_factory=dict)

    @property
    def is_remote(self):
        return self.transport == "ssh"

    @property
    def destination(self):
        """``user@host`` (or ``host``) for ssh."""
        return "%s@%s" % (self.user, self.host) if self.user else str(self.host)

    def make_backend(self):
        """The :class:`~edge.backends.base.Backend` this target runs the frame model on."""
        return backends.create(self.backend, **self.backend_options)

    @property
    def variant(self):
        """Which model files of a model directory the target runs (see edge.manifest)."""
        return self.make_backend().variant

    def summary(self):
        where = "local" if not self.is_remote else "ssh %s%s" % (
            self.destination, ":%d" % self.port if self.port else "")
        return "%-10s %-26s threads=%-4s backend=%-20s power=%s%s" % (
            self.name, where, self.threads or "auto", self.make_backend().describe(), self.power,
            "  # " + self.description if self.description else "")


def default_devices_path():
    """``$EDGEKIT_DEVICES``, else ./devices.toml, else the repository's devices.toml."""
    env = os.environ.get(ENV_VAR)
    if env:
        return env
    if os.path.isfile(DEVICES_FILE):
        return os.path.abspath(DEVICES_FILE)
    return os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), DEVICES_FILE)


def load_devices(path=None):
    """{name: Device} from ``path`` (default: :func:`default_devices_path`), strictly checked."""
    path = os.fspath(path) if path else default_devices_path()
    if not os.path.isfile(path):
        raise EdgekitError("devices file %s does not exist; pass --devices FILE or set %s (the "
                           "repository's devices.toml is a documented example)" % (path, ENV_VAR))
    with open(path, "rb") as handle:
        raw = handle.read()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise EdgekitError("%s is not UTF-8 text; save it as UTF-8" % path)
    return parse_devices(text, path)


def parse_devices(text, path=DEVICES_FILE):
    """{name: Device} of devices.toml ``text``; every problem of the file in one EdgekitError."""
    if _toml is None:  # pragma: no cover
        raise EdgekitError("reading %s needs tomli on Python < 3.11: pip install tomli" % path)
    try:
        data = _toml.loads(text)
    except _toml.TOMLDecodeError as exc:
        raise EdgekitError("%s is not valid TOML: %s; fix the syntax" % (path, exc))
    report = Report(path, TomlLines(text))
    for key in sorted(set(data) - {"devices"}):
        report.error((key,), "unknown top-level key {key}; allowed: [devices.NAME] tables only",
                     key=key)
    tables = data.get("devices")
    if not isinstance(tables, dict) or not tables:
        report.error(("devices",), "no [devices.NAME] table; add at least one target (see the "
                                   "repository's devices.toml)")
        tables = {}
    devices = {}
    for name, table in tables.items():
        where = ("devices", name)
        if not NAME_RE.match(name):
            report.error(where, "device name {name!r} is not allowed; use letters, digits, '_', "
                                "'.', '-'", name=name)
        elif not isinstance(table, dict):
            report.error(where, "devices.{name} must be a table ([devices.{name}]), got {value!r}",
                         name=name, value=table)
        else:
            for key in sorted(set(table) & set(REPLACED)):
                report.error(where + (key,), "{path} is from the first devices.toml format; use "
                                             "{use}", use=REPLACED[key])
            before = len(report.problems)
            values = report.table({k: v for k, v in table.items() if k not in REPLACED},
                                  DEVICE_SCHEMA, where)
            if len(report.problems) == before:  # rules between keys need every key valid
                devices[name] = _device(name, values, report)
    report.raise_if_any()
    return devices


def get_device(devices, name, path=None):
    if name not in devices:
        raise EdgekitError("unknown device %r; %s defines: %s (add a [devices.%s] table to use it)"
                           % (name, path or "devices.toml", ", ".join(sorted(devices)), name))
    return devices[name]


def _device(name, values, report):
    """The Device of one checked table, after the rules that tie its keys together."""
    device = Device(name=name, source=report.where, **values)

    def bad(key, message):
        report.invalid(("devices", name, key), message)

    if device.is_remote:
        if not device.host:
            bad("host", "is missing; an ssh target needs host = \"NAME\" (an address or a "
                        "~/.ssh/config alias)")
        if not device.python:
            device.python = "python3"
        for option in device.ssh_options:
            if "=" not in option or option.startswith("-"):
                bad("ssh_options", "has %r; each entry must be \"Option=value\" (ssh -o), e.g. "
                                   "\"StrictHostKeyChecking=accept-new\"" % option)
    else:
        for key in SSH_ONLY:
            if key in values:
                bad(key, "only applies to transport = \"ssh\"; remove it or set transport = "
                         "\"ssh\"")
    if device.identity_file:
        device.identity_file = os.path.expanduser(device.identity_file)
    try:  # the backend checks its own options: the registry, not this file, knows them
        device.backend = backends.canonical(device.backend)
        device.make_backend()
    except EdgekitError as exc:
        bad("backend" if "backend_options" not in values else "backend_options",
            "is not usable: %s" % exc)
    return device
