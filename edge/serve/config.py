"""The daemon's TOML configuration, validated strictly before anything starts.

Why strict: a daemon on a camera is configured once and then left alone; a typo'd key that is
silently ignored (``cooldown_sec`` for ``cooldown_s``) would be found weeks later, after the alert
that did not fire. So, as Frigate does, every unknown key, wrong type and out-of-range value is
rejected with its full key path (``cameras.pool.regions.lane1``) and what is allowed. All errors
in a file are collected and reported together, so one ``--check-config`` run shows them all.

The schema is data (``MODEL``, ``CAMERA``, ``EVENTS``, ``ALERT``, ...): each section maps key ->
:class:`~edge.serve.keys.Key` (type, default, range or choices, help), checked by the engine in
:mod:`edge.serve.keys`. The result is plain nested dicts of checked values with defaults filled
in, wrapped by :class:`ServeConfig` for attribute-free, explicit access.

Events and alert rules name the model's tasks (``[events.tasks.age]``, ``task = "gender"``),
which only the model directory knows; this module checks their shape, and
:func:`edge.serve.model_check.model_problems` checks them against the manifest at start-up (and
for ``--check-config``).
"""

import os
import socket
import sys

from edge.errors import EdgekitError
from edge.serve.keys import (NAME_RE, Key, check_section, check_table, resolve_path,
                             type_name)

if sys.version_info >= (3, 11):
    import tomllib as _toml
else:  # pragma: no cover - Python 3.9/3.10 on devices
    try:
        import tomli as _toml
    except ImportError:
        _toml = None

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

SCORE = (-1e6, 1e6)  # scores are probabilities for softmax heads, margins for hinge heads

EVENTS = {
    "debounce_windows": Key("int", 2, 1, 1000,
                            help="windows a change must hold before an event (every task)"),
    "min_score": Key("number", None, *SCORE,
                     help="classification windows scoring below this do not vote (default: all "
                          "vote)"),
    "tasks": Key("section", None, help="one [events.tasks.NAME] table per task to tune"),
    # The old spellings (swimmer models, before events followed the manifest's tasks): kept so
    # a config on a deployed camera still starts after an upgrade; see edge.serve.model_check.
    "action": Key("bool", None, help="old spelling of [events.tasks.action] enabled"),
    "identity": Key("bool", None, help="old spelling of [events.tasks.identity] enabled"),
}

EVENT_TASK = {
    "enabled": Key("bool", True, help="emit this task's events"),
    "debounce_windows": Key("int", None, 1, 1000, help="default: [events] debounce_windows"),
    "min_score": Key("number", None, *SCORE,
                     help="classification: windows scoring below this do not vote"),
    "min_change": Key("number", None, 0.0, 1e9,
                      help="regression: publish when the value moved by more than this (in the "
                           "task's units) since the last published value"),
}

ALERT = {
    "name": Key("name"),
    "task": Key("name", None, help="a task of the model (default: action, for swimmer configs "
                                   "written before tasks were generic)"),
    "label": Key("str", None, help="classification: the label that fires"),
    "min_score": Key("number", None, *SCORE, help="classification: default 0.5"),
    "above": Key("number", None, *SCORE, help="regression: fires while the value is above this"),
    "below": Key("number", None, *SCORE, help="regression: fires while the value is below this"),
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
    data["model"] = check_section(raw, "model", MODEL, errors, required=True)
    if data["model"].get("dir"):
        data["model"]["dir"] = resolve_path(base, data["model"]["dir"])
    if data["model"].get("devices_file"):
        data["model"]["devices_file"] = resolve_path(base, data["model"]["devices_file"])
    if data["model"].get("target") and any(k in raw.get("model", {}) for k in
                                           ("device", "delegate", "threads")):
        errors.append("model.target: give a target or device/delegate/threads, not both")
    if data["model"].get("gallery"):
        data["model"]["gallery"] = resolve_path(base, data["model"]["gallery"])

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
            camera = check_table(table, key_path, CAMERA, errors)
            if camera is None:
                continue
            if camera.get("reconnect_max_s") is not None and camera.get("reconnect_min_s") \
                    and camera["reconnect_max_s"] < camera["reconnect_min_s"]:
                errors.append("%s.reconnect_max_s: must be >= reconnect_min_s" % key_path)
            source = camera.get("source")
            if isinstance(source, str) and "://" not in source and not source.isdigit():
                camera["source"] = resolve_path(base, source)
            data["cameras"][name] = camera
        if data["cameras"] and not any(c.get("enabled") for c in data["cameras"].values()):
            errors.append("cameras: every camera is disabled; enable at least one")

    data["events"] = _events(raw, errors)
    data["alerts"] = _alerts(raw, data["cameras"], errors)

    outputs = raw.get("outputs", {})
    data["outputs"] = {}
    if not isinstance(outputs, dict):
        errors.append("outputs: must be a table, got %s" % type_name(outputs))
    else:
        for key in sorted(set(outputs) - {"jsonl", "mqtt"}):
            errors.append("outputs.%s: unknown output (allowed: jsonl, mqtt)" % key)
        if "jsonl" in outputs:
            jsonl = check_table(outputs["jsonl"], "outputs.jsonl", JSONL, errors)
            if jsonl is not None:
                if jsonl.get("path"):
                    jsonl["path"] = resolve_path(base, jsonl["path"])
                data["outputs"]["jsonl"] = jsonl
        if "mqtt" in outputs:
            mqtt = check_table(outputs["mqtt"], "outputs.mqtt", MQTT, errors)
            if mqtt is not None:
                _finish_mqtt(mqtt, base, errors)
                data["outputs"]["mqtt"] = mqtt
        if not data["outputs"] and not errors:
            errors.append("outputs: no output configured; add [outputs.jsonl] and/or "
                          "[outputs.mqtt], or events go nowhere")

    data["http"] = check_section(raw, "http", HTTP, errors)
    data["daemon"] = check_section(raw, "daemon", DAEMON, errors)

    if errors:
        raise EdgekitError("%s: %d problem(s) in the config:\n  %s"
                           % (where, len(errors), "\n  ".join(errors)))
    return ServeConfig(data, path)


def _events(raw, errors):
    """[events] with its [events.tasks.NAME] tables checked (task names are checked against the
    model at start-up, :func:`edge.serve.model_check.model_problems`)."""
    events = check_section(raw, "events", EVENTS, errors)
    tables = events.get("tasks")
    events["tasks"] = {}
    if tables is None:
        return events
    if not isinstance(tables, dict):
        errors.append("events.tasks: must be a table of [events.tasks.NAME] tables, got %s"
                      % type_name(tables))
        return events
    for name, table in tables.items():
        key_path = "events.tasks.%s" % name
        if not NAME_RE.match(name):
            errors.append("%s: task names use letters, digits, _ and - (1-64 chars)" % key_path)
            continue
        checked = check_table(table, key_path, EVENT_TASK, errors)
        if checked is not None:
            events["tasks"][name] = checked
    for old in ("action", "identity"):
        if events.get(old) is not None and isinstance(tables.get(old), dict) \
                and "enabled" in tables[old]:
            errors.append("events.%s: the old spelling of [events.tasks.%s] enabled; give one of "
                          "them" % (old, old))
    return events


def _alerts(raw, cameras, errors):
    """[[alerts]]: each rule is a classification rule (label, min_score) or a regression rule
    (above and/or below); which one the task is, is checked against the model at start-up."""
    rules = []
    alerts = raw.get("alerts", [])
    if not isinstance(alerts, list):
        errors.append("alerts: must be an array of tables ([[alerts]]), got %s"
                      % type_name(alerts))
        return rules
    names = set()
    for i, table in enumerate(alerts):
        where = "alerts[%d]" % i
        rule = check_table(table, where, ALERT, errors)
        if rule is None:
            continue
        if rule.get("name") in names:
            errors.append("%s.name: %r is used by another rule; names must be unique"
                          % (where, rule["name"]))
        names.add(rule.get("name"))
        threshold = rule.get("above") is not None or rule.get("below") is not None
        if rule.get("label") is None and not threshold and "label" not in table:
            errors.append("%s.label: required key missing (a classification rule names its "
                          "label; a regression rule gives above and/or below instead)" % where)
        elif rule.get("label") is not None and threshold:
            errors.append("%s: label is for classification rules, above/below for regression "
                          "rules; give one or the other" % where)
        if threshold and rule.get("min_score") is not None:
            errors.append("%s.min_score: only for classification rules (with label); a "
                          "regression rule fires on above/below" % where)
        if rule.get("above") is not None and rule.get("below") is not None \
                and not rule["below"] < rule["above"]:
            errors.append("%s: with both, below (%s) must be less than above (%s): the rule "
                          "fires outside [below, above]" % (where, rule["below"], rule["above"]))
        for camera in rule.get("cameras") or []:
            if cameras and camera not in cameras:
                errors.append("%s.cameras: no camera named %r (cameras: %s)"
                              % (where, camera, ", ".join(sorted(cameras))))
        rules.append(rule)
    return rules


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
        mqtt["password_file"] = resolve_path(base, mqtt["password_file"])
    if mqtt.get("spool_dir"):
        mqtt["spool_dir"] = resolve_path(base, mqtt["spool_dir"])
    if mqtt.get("reconnect_max_s", 0) < mqtt.get("reconnect_min_s", 0):
        errors.append("outputs.mqtt.reconnect_max_s: must be >= reconnect_min_s")
    tls = mqtt.get("tls")
    if tls is not None:
        tls = check_table(tls, "outputs.mqtt.tls", TLS, errors)
        if tls is not None:
            for key in ("ca_file", "cert_file", "key_file"):
                if tls.get(key):
                    tls[key] = resolve_path(base, tls[key])
            if bool(tls.get("cert_file")) != bool(tls.get("key_file")):
                errors.append("outputs.mqtt.tls: cert_file and key_file go together")
        mqtt["tls"] = tls


def resolve_target(model):
    """Set ``model["backend"]`` (the :class:`~edge.backends.base.Backend` the frame model runs
    on) and ``threads``: from the devices.toml ``target`` when given, else from ``device`` and
    ``delegate``. A device the backends do not know is an error naming the key."""
    if not model.get("target"):
        from edge import backends
        try:
            model["backend"] = backends.create(model["device"], delegate=model.get("delegate"))
        except EdgekitError as exc:
            raise EdgekitError("model.device: %s" % exc)
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
    model["backend"] = device.make_backend()
    model["device"], model["delegate"] = device.backend, None
    model["threads"] = device.threads or model["threads"]
    return model
