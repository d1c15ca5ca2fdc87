"""``devices.toml``: the benchmark targets, read strictly.

One ``[devices.NAME]`` table per target. Every key, its type and what is allowed is in
:data:`KEYS`; the shipped ``devices.toml`` documents them in comments. Like Frigate's config, a
file that half-parses is refused: an unknown key, a wrong type or an impossible value is an
:class:`EdgekitError` naming the file, the line (when it can be found), the key path and what is
allowed, e.g.::

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

from edge.errors import EdgekitError

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
DELEGATES = ("xnnpack", "edgetpu", "gpu")
VARIANTS = ("tflite", "edgetpu")
POWER_SAMPLERS = ("none", "tegrastats")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
EDGETPU_DEVICE_RE = re.compile(r"^(usb|pci)(:\d+)?$|^\d+$")

# key -> (python type(s), description of what is allowed); "str", "int", "bool", "list", "table"
KEYS = {
    "description": ("str", "free text"),
    "transport": ("str", "local | ssh"),
    "host": ("str", "a host name, an address or a ~/.ssh/config Host alias (ssh only)"),
    "user": ("str", "the login name on the target (ssh only; default: ~/.ssh/config or yours)"),
    "port": ("int", "1..65535 (ssh only; default: ~/.ssh/config or 22)"),
    "identity_file": ("str", "path of the private key (ssh only; ~ is expanded)"),
    "ssh_options": ("list", "a list of \"Option=value\" strings passed as ssh -o (ssh only)"),
    "connect_timeout": ("int", "seconds, 1..600"),
    "python": ("str", "the Python on the target (default: python3 over ssh, this Python "
                      "locally)"),
    "workdir": ("str", "an absolute directory on the target for the temporary bench folder"),
    "keep_workdir": ("bool", "true | false"),
    "threads": ("int", "CPU threads for the interpreter, 1..256"),
    "delegate": ("str", "xnnpack | edgetpu | gpu | the path of a delegate library (.so)"),
    "delegate_path": ("str", "library file of the edgetpu/gpu delegate, to override the default"),
    "edgetpu_device": ("str", "usb | pci | usb:N | pci:N | N (edgetpu only)"),
    "variant": ("str", "tflite | edgetpu (edgetpu runs frame_edgetpu, needs delegate = "
                       "\"edgetpu\")"),
    "power": ("str", "none | tegrastats"),
    "power_interval_ms": ("int", "sampling interval of the power sampler, 10..10000"),
    "env": ("table", "a table of environment variables (strings) for the target's Python"),
    "emulated": ("bool", "true | false: an emulated CPU (qemu); outputs label its latency"),
}
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
    threads: Optional[int] = None
    delegate: str = "xnnpack"
    delegate_path: Optional[str] = None
    edgetpu_device: Optional[str] = None
    variant: str = "tflite"
    power: str = "none"
    power_interval_ms: int = 100
    env: Dict[str, str] = field(default_factory=dict)
    emulated: bool = False              # latency under emulation means nothing: say so

    @property
    def is_remote(self):
        return self.transport == "ssh"

    @property
    def destination(self):
        """``user@host`` (or ``host``) for ssh."""
        return "%s@%s" % (self.user, self.host) if self.user else str(self.host)

    @property
    def runtime_device(self):
        """The ``device`` string of :func:`edge.interpreter.make_interpreter` for the frame model."""
        if self.delegate == "edgetpu":
            return "edgetpu:%s" % self.edgetpu_device if self.edgetpu_device else "edgetpu"
        if self.delegate == "gpu":
            return "gpu"
        return "cpu"

    @property
    def runtime_delegate(self):
        """An external delegate library path for make_interpreter, or None."""
        if self.delegate in DELEGATES:
            return self.delegate_path
        return self.delegate  # a path

    @property
    def frame_role(self):
        return "frame_edgetpu" if self.variant == "edgetpu" else "frame"

    def summary(self):
        where = "local" if not self.is_remote else "ssh %s%s" % (
            self.destination, ":%d" % self.port if self.port else "")
        return "%-10s %-26s threads=%-4s delegate=%-8s variant=%-7s power=%s%s" % (
            self.name, where, self.threads or "auto", self.delegate if self.delegate in DELEGATES
            else "path", self.variant, self.power,
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
    if _toml is None:  # pragma: no cover
        raise EdgekitError("reading %s needs tomli on Python < 3.11: pip install tomli" % path)
    try:
        data = _toml.loads(text)
    except _toml.TOMLDecodeError as exc:
        raise EdgekitError("%s is not valid TOML: %s; fix the syntax" % (path, exc))
    lines = _Lines(text, path)
    unknown = sorted(set(data) - {"devices"})
    if unknown:
        raise EdgekitError("%s: unknown top-level key %s; allowed: [devices.NAME] tables only"
                           % (lines.where(None, unknown[0]), unknown[0]))
    tables = data.get("devices")
    if not isinstance(tables, dict) or not tables:
        raise EdgekitError("%s: no [devices.NAME] table; add at least one target (see the "
                           "repository's devices.toml)" % path)
    devices = {}
    for name, table in tables.items():
        if not NAME_RE.match(name):
            raise EdgekitError("%s: device name %r is not allowed; use letters, digits, '_', '.', "
                               "'-'" % (lines.where(name, None), name))
        if not isinstance(table, dict):
            raise EdgekitError("%s: devices.%s must be a table ([devices.%s]), got %r"
                               % (lines.where(None, "devices"), name, name, table))
        devices[name] = _parse_device(name, table, lines)
    return devices


def get_device(devices, name, path=None):
    if name not in devices:
        raise EdgekitError("unknown device %r; %s defines: %s (add a [devices.%s] table to use it)"
                           % (name, path or "devices.toml", ", ".join(sorted(devices)), name))
    return devices[name]


class _Lines(object):
    """Finds the line of ``[devices.NAME]`` / ``key =`` inside it, for error messages."""

    def __init__(self, text, path):
        self.path = path
        self.text = text.splitlines()

    def where(self, name, key):
        line = self._find(name, key)
        return "%s:%d" % (self.path, line) if line else self.path

    def _find(self, name, key):
        table = None
        header = re.compile(r"^\s*\[\s*([^\]]+?)\s*\]")
        for number, line in enumerate(self.text, 1):
            match = header.match(line)
            if match:
                table = match.group(1).replace('"', "").replace("'", "").replace(" ", "")
                if name is not None and key is None and table == "devices." + name:
                    return number
                if name is None and key is not None and table.split(".")[0] == key:
                    return number
                continue
            in_table = (table == "devices." + name) if name is not None else table is None
            if key is not None and in_table and re.match(
                    r"^\s*[\"']?%s[\"']?\s*=" % re.escape(key), line):
                return number
        return None


def _parse_device(name, table, lines):
    def bad(key, message):
        raise EdgekitError("%s: devices.%s.%s %s" % (lines.where(name, key), name, key, message))

    kwargs = {"name": name, "source": lines.path}
    for key, value in table.items():
        if key not in KEYS:
            raise EdgekitError("%s: devices.%s.%s is not a known key; allowed: %s"
                               % (lines.where(name, key), name, key, ", ".join(sorted(KEYS))))
        kind, allowed = KEYS[key]
        ok = {"str": isinstance(value, str),
              "int": isinstance(value, int) and not isinstance(value, bool),
              "bool": isinstance(value, bool),
              "list": isinstance(value, list) and all(isinstance(v, str) for v in value),
              "table": isinstance(value, dict) and all(isinstance(v, str)
                                                       for v in value.values())}[kind]
        if not ok:
            bad(key, "= %r has the wrong type; expected %s: %s"
                % (value, {"str": "a string", "int": "an integer", "bool": "true or false",
                           "list": "a list of strings", "table": "a table of strings"}[kind],
                   allowed))
        kwargs[key] = value

    device = Device(**kwargs)

    def choice(key, value, options):
        if value not in options:
            bad(key, "= %r is not allowed; allowed: %s" % (value, " | ".join(options)))

    def in_range(key, value, low, high):
        if value is not None and not low <= value <= high:
            bad(key, "= %r is out of range; allowed: %d..%d" % (value, low, high))

    choice("transport", device.transport, TRANSPORTS)
    choice("power", device.power, POWER_SAMPLERS)
    in_range("port", device.port, 1, 65535)
    in_range("connect_timeout", device.connect_timeout, 1, 600)
    in_range("threads", device.threads, 1, 256)
    in_range("power_interval_ms", device.power_interval_ms, 10, 10000)
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
            if key in table:
                bad(key, "only applies to transport = \"ssh\"; remove it or set transport = "
                         "\"ssh\"")
    if not device.workdir.startswith("/"):
        bad("workdir", "= %r must be an absolute path" % device.workdir)
    if device.identity_file:
        device.identity_file = os.path.expanduser(device.identity_file)
    if device.delegate not in DELEGATES and not _looks_like_path(device.delegate):
        bad("delegate", "= %r is not allowed; allowed: %s | a path to a delegate library "
                        "(e.g. /usr/lib/libmy_delegate.so)" % (device.delegate,
                                                                " | ".join(DELEGATES)))
    if device.delegate_path is not None and device.delegate not in ("edgetpu", "gpu"):
        bad("delegate_path", "only applies to delegate = \"edgetpu\" or \"gpu\"")
    if device.edgetpu_device is not None:
        if device.delegate != "edgetpu":
            bad("edgetpu_device", "only applies to delegate = \"edgetpu\"")
        if not EDGETPU_DEVICE_RE.match(device.edgetpu_device):
            bad("edgetpu_device", "= %r is not allowed; allowed: usb | pci | usb:N | pci:N | N"
                % device.edgetpu_device)
    if "variant" not in table:
        device.variant = "edgetpu" if device.delegate == "edgetpu" else "tflite"
    choice("variant", device.variant, VARIANTS)
    if (device.variant == "edgetpu") != (device.delegate == "edgetpu"):
        bad("variant", "= %r does not fit delegate = %r: Edge TPU models (variant = \"edgetpu\") "
                       "run only with delegate = \"edgetpu\", and the Edge TPU delegate only runs "
                       "them" % (device.variant, device.delegate))
    return device


def _looks_like_path(value):
    return "/" in value or value.endswith((".so", ".dylib", ".dll")) or value.startswith(".")
