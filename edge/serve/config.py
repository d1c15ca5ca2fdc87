"""The daemon's TOML configuration, validated strictly before anything starts.

Why strict: a daemon on a camera is configured once and then left alone; a typo'd key that is
silently ignored (``cooldown_sec`` for ``cooldown_s``) would be found weeks later, after the alert
that did not fire. So, as Frigate does, every unknown key, wrong type and out-of-range value is
rejected with its full key path (``cameras.pool.regions.lane1``) and what is allowed. All errors
in a file are collected and reported together, so one ``--check-config`` run shows them all.

The schema is data (:data:`SCHEMA`): each section maps key -> :class:`Key` (type, default, range
or choices, help). The result is plain nested dicts of checked values with defaults filled in,
wrapped by :class:`ServeConfig` for attribute-free, explicit access.
"""

import os
import re
import socket
import sys

from edge.errors import EdgekitError

if sys.version_info >= (3, 11):
    import tomllib as _toml
else:  # pragma: no cover - Python 3.9/3.10 on devices
    try:
        import tomli as _toml
    except ImportError:
        _toml = None

REQUIRED = object()
NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
TASK_KEYS = ("action", "identity")


class Key(object):
    """One config key: ``kind`` in int/float/number/str/bool/list/box; optional range/choices."""

    def __init__(self, kind, default=REQUIRED, low=None, high=None, choices=None, help=""):
        self.kind = kind
        self.default = default
        self.low = low
        self.high = high
        self.choices = choices
        self.help = help


MODEL = {
    "dir": Key("str", help="model directory written by 'edgekit quantize'"),
    "target": Key("str", None, help="a target name in devices.toml (sets device, delegate, "
                                    "threads)"),
    "devices_file": Key("str", None, help="devices.toml to read targets from"),
    "device": Key("str", "cpu", choices=None, help="cpu, gpu, edgetpu, edgetpu:usb, ..."),
    "threads": Key("int", 1, 1, 64),
    "delegate": Key("str", None),
    "window": Key("int", None, 1, 1000, help="clip length T; must equal the model's"),
    "stride": Key("int", None, 1, 1000, help="run the clip head every S frames"),
    "gap_policy": Key("str", "hold", choices=("reset", "hold")),
    "max_skip": Key("int", 2, 0, 1000),
    "max_gap_s": Key("number", None, 0.0, 3600.0),
    "gallery": Key("str", None, help="gallery .npz from 'edgekit enroll'"),
    "unknown_threshold": Key("number", None, -1.0, 1.0),
}

CAMERA = {
    "source": Key("source", help="camera index, video file, or rtsp:// / http:// URL"),
    "fps": Key("number", 0.0, 0.0, 240.0,
               help="frames per second taken from the source; 0 = as delivered (files: as fast "
                    "as inference takes them, none dropped)"),
    "queue": Key("int", 8, 1, 1024, help="frames buffered between capture and inference"),
    "stall_timeout_s": Key("number", 10.0, 0.1, 3600.0),
    "open_timeout_s": Key("number", 10.0, 0.1, 600.0,
                          help="RTSP/HTTP: opening the stream fails after this long"),
    "read_timeout_s": Key("number", 5.0, 0.1, 600.0,
                          help="RTSP/HTTP: a read fails after this long without data; keep it "
                               "below stall_timeout_s"),
    "reconnect_min_s": Key("number", 1.0, 0.01, 3600.0),
    "reconnect_max_s": Key("number", 60.0, 0.01, 86400.0),
    "enabled": Key("bool", True),
    "regions": Key("regions", None, help="name = [x, y, w, h] in source pixels"),
}

EVENTS = {
    "debounce_windows": Key("int", 2, 1, 1000,
                            help="windows a new label must hold before an event"),
    "min_score": Key("number", 0.0, 0.0, 1.0, help="windows below this score do not count"),
    "action": Key("bool", True, help="emit action events"),
    "identity": Key("bool", True, help="emit identity events"),
}

ALERT = {
    "name": Key("name"),
    "task": Key("str", "action", choices=TASK_KEYS),
    "label": Key("str"),
    "min_score": Key("number", 0.5, 0.0, 1.0),
    "consecutive": Key("int", 1, 1, 10000),
    "cooldown_s": Key("number", 60.0, 0.0, 86400.0),
    "cameras": Key("list", None, help="camera names the rule applies to (default: all)"),
}

JSONL = {
    "path": Key("str"),
    "max_bytes": Key("int", 10 * 1024 * 1024, 1024, 1 << 40),
    "keep": Key("int", 5, 0, 1000),
}

TLS = {
    "ca_file": Key("str", None),
    "cert_file": Key("str", None),
    "key_file": Key("str", None),
    "insecure": Key("bool", False, help="skip the broker hostname check (testing only)"),
}

MQTT = {
    "host": Key("str"),
    "port": Key("int", 1883, 1, 65535),
    "client_id": Key("str", None),
    "topic_prefix": Key("str", None),
    "username": Key("str", None),
    "password": Key("str", None),
    "password_file": Key("str", None),
    "keepalive_s": Key("int", 30, 5, 3600),
    "reconnect_min_s": Key("number", 0.5, 0.01, 3600.0),
    "reconnect_max_s": Key("number", 30.0, 0.01, 86400.0),
    "max_inflight": Key("int", 20, 1, 65535),
    "spool_dir": Key("str"),
    "spool_max_bytes": Key("int", 256 * 1024 * 1024, 4096, 1 << 40),
    "tls": Key("section", None),
}

HTTP = {
    "enabled": Key("bool", True),
    "bind": Key("str", "127.0.0.1"),
    "port": Key("int", 8765, 0, 65535, help="0 picks a free port (tests)"),
}

DAEMON = {
    "shutdown_timeout_s": Key("number", 5.0, 0.1, 600.0),
    "log_level": Key("str", "info", choices=("debug", "info", "warning", "error")),
}

TOP = {"model", "cameras", "events", "alerts", "outputs", "http", "daemon"}


class ServeConfig(object):
    """Checked configuration: plain dicts with every default filled in."""

    def __init__(self, data, path=None):
        self.path = path
        self.model = data["model"]
        self.cameras = data["cameras"]      # name -> camera dict (regions: name -> (x, y, w, h))
        self.events = data["events"]
        self.alerts = data["alerts"]        # list of alert dicts
        self.jsonl = data["outputs"].get("jsonl")
        self.mqtt = data["outputs"].get("mqtt")
        self.http = data["http"]
        self.daemon = data["daemon"]

    def base_dir(self):
        return os.path.dirname(os.path.abspath(self.path)) if self.path else os.getcwd()


def load_config(path):
    """Read and check ``path``; EdgekitError listing every problem found."""
    if _toml is None:  # pragma: no cover
        raise EdgekitError("reading TOML on Python < 3.11 needs tomli: pip install tomli")
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise EdgekitError("config file %s does not exist; start from examples/serve.toml" % path)
    try:
        with open(path, "rb") as handle:
            raw = _toml.load(handle)
    except (OSError, ValueError) as exc:  # TOMLDecodeError is a ValueError
        raise EdgekitError("config file %s is not valid TOML: %s" % (path, exc))
    return parse_config(raw, path)


def parse_config(raw, path=None):
    """Check the parsed TOML dict ``raw`` against the schema; return a :class:`ServeConfig`."""
    errors = []
    where = path or "config"
    base = os.path.dirname(os.path.abspath(path)) if path else os.getcwd()
    unknown = sorted(set(raw) - TOP)
    for key in unknown:
        errors.append("%s: unknown section or key (allowed: %s)" % (key, ", ".join(sorted(TOP))))

    data = {}
    data["model"] = _section(raw, "model", MODEL, errors, required=True)
    if data["model"].get("dir"):
        data["model"]["dir"] = _resolve(base, data["model"]["dir"])
    if data["model"].get("devices_file"):
        data["model"]["devices_file"] = _resolve(base, data["model"]["devices_file"])
    if data["model"].get("target") and any(k in raw.get("model", {}) for k in
                                           ("device", "delegate", "threads")):
        errors.append("model.target: give a target or device/delegate/threads, not both")
    if data["model"].get("gallery"):
        data["model"]["gallery"] = _resolve(base, data["model"]["gallery"])

    cameras = raw.get("cameras", None)
    data["cameras"] = {}
    if not isinstance(cameras, dict) or not cameras:
        errors.append("cameras: required; add at least one [cameras.NAME] table with a source")
    else:
        for name, table in cameras.items():
            key_path = "cameras.%s" % name
            if not NAME_RE.match(name):
                errors.append("%s: camera names may use letters, digits, _ and - (1-64 chars)"
                              % key_path)
            camera = _table(table, key_path, CAMERA, errors)
            if camera is None:
                continue
            if camera.get("reconnect_max_s") is not None and camera.get("reconnect_min_s") \
                    and camera["reconnect_max_s"] < camera["reconnect_min_s"]:
                errors.append("%s.reconnect_max_s: must be >= reconnect_min_s" % key_path)
            source = camera.get("source")
            if isinstance(source, str) and "://" not in source and not source.isdigit():
                camera["source"] = _resolve(base, source)
            data["cameras"][name] = camera
        if data["cameras"] and not any(c.get("enabled") for c in data["cameras"].values()):
            errors.append("cameras: every camera is disabled; enable at least one")

    data["events"] = _section(raw, "events", EVENTS, errors)

    data["alerts"] = []
    alerts = raw.get("alerts", [])
    if not isinstance(alerts, list):
        errors.append("alerts: must be an array of tables ([[alerts]]), got %s"
                      % _type_name(alerts))
    else:
        names = set()
        for i, table in enumerate(alerts):
            rule = _table(table, "alerts[%d]" % i, ALERT, errors)
            if rule is None:
                continue
            if rule.get("name") in names:
                errors.append("alerts[%d].name: %r is used by another rule; names must be unique"
                              % (i, rule["name"]))
            names.add(rule.get("name"))
            for camera in rule.get("cameras") or []:
                if data["cameras"] and camera not in data["cameras"]:
                    errors.append("alerts[%d].cameras: no camera named %r (cameras: %s)"
                                  % (i, camera, ", ".join(sorted(data["cameras"]))))
            data["alerts"].append(rule)

    outputs = raw.get("outputs", {})
    data["outputs"] = {}
    if not isinstance(outputs, dict):
        errors.append("outputs: must be a table, got %s" % _type_name(outputs))
    else:
        for key in sorted(set(outputs) - {"jsonl", "mqtt"}):
            errors.append("outputs.%s: unknown output (allowed: jsonl, mqtt)" % key)
        if "jsonl" in outputs:
            jsonl = _table(outputs["jsonl"], "outputs.jsonl", JSONL, errors)
            if jsonl is not None:
                if jsonl.get("path"):
                    jsonl["path"] = _resolve(base, jsonl["path"])
                data["outputs"]["jsonl"] = jsonl
        if "mqtt" in outputs:
            mqtt = _table(outputs["mqtt"], "outputs.mqtt", MQTT, errors)
            if mqtt is not None:
                _finish_mqtt(mqtt, base, errors)
                data["outputs"]["mqtt"] = mqtt
        if not data["outputs"] and not errors:
            errors.append("outputs: no output configured; add [outputs.jsonl] and/or "
                          "[outputs.mqtt], or events go nowhere")

    data["http"] = _section(raw, "http", HTTP, errors)
    data["daemon"] = _section(raw, "daemon", DAEMON, errors)

    if errors:
        raise EdgekitError("%s: %d problem(s) in the config:\n  %s"
                           % (where, len(errors), "\n  ".join(errors)))
    return ServeConfig(data, path)


def _finish_mqtt(mqtt, base, errors):
    host = socket.gethostname().split(".")[0] or "camera"
    mqtt["client_id"] = mqtt.get("client_id") or "edgekit-%s" % host
    prefix = mqtt.get("topic_prefix") or "edgekit/%s" % host
    if any(c in prefix for c in "#+") or prefix.startswith("/") or prefix.endswith("/"):
        errors.append("outputs.mqtt.topic_prefix: %r must not contain # or + nor start or end "
                      "with /" % prefix)
    mqtt["topic_prefix"] = prefix
    if mqtt.get("password") is not None and mqtt.get("password_file") is not None:
        errors.append("outputs.mqtt: give password or password_file, not both")
    if (mqtt.get("password") is not None or mqtt.get("password_file")) and not mqtt.get("username"):
        errors.append("outputs.mqtt.username: required when a password is given")
    if mqtt.get("password_file"):
        mqtt["password_file"] = _resolve(base, mqtt["password_file"])
    if mqtt.get("spool_dir"):
        mqtt["spool_dir"] = _resolve(base, mqtt["spool_dir"])
    if mqtt.get("reconnect_max_s", 0) < mqtt.get("reconnect_min_s", 0):
        errors.append("outputs.mqtt.reconnect_max_s: must be >= reconnect_min_s")
    tls = mqtt.get("tls")
    if tls is not None:
        tls = _table(tls, "outputs.mqtt.tls", TLS, errors)
        if tls is not None:
            for key in ("ca_file", "cert_file", "key_file"):
                if tls.get(key):
                    tls[key] = _resolve(base, tls[key])
            if bool(tls.get("cert_file")) != bool(tls.get("key_file")):
                errors.append("outputs.mqtt.tls: cert_file and key_file go together")
        mqtt["tls"] = tls


def _section(raw, name, schema, errors, required=False):
    if name not in raw:
        if required:
            errors.append("%s: required section missing" % name)
            return {}
        return _table({}, name, schema, errors) or {}
    return _table(raw[name], name, schema, errors) or {}


def _table(table, key_path, schema, errors):
    if not isinstance(table, dict):
        errors.append("%s: must be a table, got %s" % (key_path, _type_name(table)))
        return None
    out = {}
    for key in sorted(set(table) - set(schema)):
        errors.append("%s.%s: unknown key (allowed: %s)" % (key_path, key, ", ".join(schema)))
    for key, spec in schema.items():
        full = "%s.%s" % (key_path, key)
        if key not in table:
            if spec.default is REQUIRED:
                errors.append("%s: required key missing%s" % (full, _helpful(spec)))
            out[key] = None if spec.default is REQUIRED else spec.default
            continue
        value = _check(table[key], spec, full, errors)
        out[key] = value
    return out


def _check(value, spec, full, errors):
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


def _helpful(spec):
    return " (%s)" % spec.help if spec.help else ""


def _resolve(base, path):
    """Relative paths in the config are relative to the config file, not the working dir."""
    path = os.path.expanduser(path)
    return path if os.path.isabs(path) else os.path.normpath(os.path.join(base, path))


def _type_name(value):
    return {dict: "a table", list: "an array", str: "a string", bool: "a boolean",
            int: "an integer", float: "a number"}.get(type(value), type(value).__name__)


def model_problems(cfg, manifest):
    """Ways the config and the model directory disagree (each a message with the key path)."""
    problems = []
    window = cfg.model.get("window")
    if window is not None and window != manifest.clip_length:
        problems.append("model.window = %d but the model in %s takes clips of %d frames "
                        "(manifest clip_length); remove model.window or point model.dir at a "
                        "model built for %d" % (window, cfg.model["dir"], manifest.clip_length,
                                                window))
    tasks = {t.name: t for t in manifest.tasks}
    for i, rule in enumerate(cfg.alerts):
        task = tasks.get(rule["task"])
        if task is None or task.kind != "classification":
            problems.append("alerts[%d].task: the model has no classification task %r (it has: "
                            "%s)" % (i, rule["task"], ", ".join(sorted(tasks))))
        elif rule["label"] not in task.labels:
            problems.append("alerts[%d].label: %r is not a label of task %s (labels: %s)"
                            % (i, rule["label"], rule["task"], ", ".join(task.labels)))
    if cfg.model.get("gallery") and not any(t.kind == "embedding" for t in manifest.tasks):
        problems.append("model.gallery is set but the model in %s has no embedding task; remove "
                        "model.gallery or use a model with one" % cfg.model["dir"])
    return problems


def resolve_target(model):
    """Fill ``device``/``delegate``/``threads`` of ``model`` from its devices.toml ``target``."""
    if not model.get("target"):
        return model
    try:
        from edge.devices import get_device, load_devices
    except ImportError:  # pragma: no cover - devices.toml support missing in this install
        raise EdgekitError("model.target needs edge.devices (devices.toml support); set "
                           "model.device and model.threads instead")
    path = model.get("devices_file")
    try:
        devices = load_devices(path)
        device = get_device(devices, model["target"], path)
    except EdgekitError as exc:
        where = "model.devices_file" if path else "model.target"
        raise EdgekitError("%s: cannot use target %r: %s" % (where, model["target"], exc))
    model["device"] = device.runtime_device
    model["delegate"] = device.runtime_delegate
    model["threads"] = device.threads or model["threads"]
    return model
