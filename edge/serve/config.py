"""The daemon's TOML configuration, validated strictly before anything starts.

Why strict: a daemon on a camera is configured once and then left alone; a typo'd key that is
silently ignored (``cooldown_sec`` for ``cooldown_s``) would be found weeks later, after the alert
that did not fire. So, as Frigate does, every unknown key, wrong type and out-of-range value is
rejected with its full key path (``cameras.pool.regions.lane1``) and what is allowed. All errors
in a file are collected and reported together, so one ``--check-config`` run shows them all.

The schema is data (``MODEL``, ``CAMERA``, ``EVENTS``, ``ALERT``, ...): each section maps key ->
:class:`~edge.schema.Key` (kind, default, range or choices, help), checked by :mod:`edge.schema`,
the engine every edgekit config file uses, in this file's established wording (``WORDING``).
Problems name the line when the file was read from disk (``serve.toml:7: model.threads: ...``).
The result is plain nested dicts of checked values with defaults filled in, wrapped by
:class:`ServeConfig` for attribute-free, explicit access.

Events and alert rules name the model's tasks (``[events.tasks.age]``, ``task = "gender"``),
which only the model directory knows; this module checks their shape, and
:func:`edge.serve.model_check.model_problems` checks them against the manifest at start-up (and
for ``--check-config``).
"""

import os
import socket
import sys

from edge.errors import EdgekitError
from edge.reduced_decode import SCALES
from edge.schema import REQUIRED, Key, Report, Schema, TomlLines
from edge.serve.keys import (NAME_RE, NAMES_RULE, WORDING, named, region_box, resolve_path,
                             some_regions, source)

if sys.version_info >= (3, 11):
    import tomllib as _toml
else:  # pragma: no cover - Python 3.9/3.10 on devices
    try:
        import tomli as _toml
    except ImportError:
        _toml = None

MODEL = {
    "dir": Key("text", help="model directory written by 'edgekit quantize'"),
    "target": Key("text", None, help="a target name in devices.toml (sets device, delegate, "
                                     "threads)"),
    "devices_file": Key("text", None, help="devices.toml to read targets from"),
    "device": Key("text", "cpu", choices=None, help="cpu, gpu, edgetpu, edgetpu:usb, ..."),
    "threads": Key("int", 1, 1, 64),
    "delegate": Key("text", None),
    "window": Key("int", None, 1, 1000, help="clip length T; must equal the model's"),
    "stride": Key("int", None, 1, 1000, help="run the clip head every S frames"),
    "gap_policy": Key("text", "hold", choices=("reset", "hold")),
    "max_skip": Key("int", 2, 0, 1000),
    "max_gap_s": Key("number", None, 0.0, 3600.0),
    "gallery": Key("text", None, help="gallery .npz from 'edgekit enroll'"),
    "unknown_threshold": Key("number", None, -1.0, 1.0),
}

CAMERA = {
    "source": Key("any", check=source, help="camera index, video file, or rtsp:// / http:// URL"),
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
    "decode_scale": Key("int", 1, choices=SCALES,
                        help="decode at 1/N of the source's width and height (MJPEG streams "
                             "skip most of the decode); regions stay in source pixels"),
    "regions": Key("map", None, item=Key("any", check=region_box), check=some_regions,
                   names=NAME_RE, names_help="region names may use " + NAMES_RULE,
                   expected="a table of name = [x, y, w, h]",
                   help="name = [x, y, w, h] in source pixels"),
}

SCORE = (-1e6, 1e6)  # scores are probabilities for softmax heads, margins for hinge heads

EVENT_TASK = {
    "enabled": Key("bool", True, help="emit this task's events"),
    "debounce_windows": Key("int", None, 1, 1000, help="default: [events] debounce_windows"),
    "min_score": Key("number", None, *SCORE,
                     help="classification: windows scoring below this do not vote"),
    "min_change": Key("number", None, 0.0, 1e9,
                      help="regression: publish when the value moved by more than this (in the "
                           "task's units) since the last published value"),
}

EVENTS = {
    "debounce_windows": Key("int", 2, 1, 1000,
                            help="windows a change must hold before an event (every task)"),
    "min_score": Key("number", None, *SCORE,
                     help="classification windows scoring below this do not vote (default: all "
                          "vote)"),
    "tasks": Key("map", None, item=Schema(EVENT_TASK), names=NAME_RE,
                 names_help="task names use " + NAMES_RULE,
                 expected="a table of [events.tasks.NAME] tables",
                 help="one [events.tasks.NAME] table per task to tune"),
    # The old spellings (swimmer models, before events followed the manifest's tasks): kept so
    # a config on a deployed camera still starts after an upgrade; see edge.serve.model_check.
    "action": Key("bool", None, help="old spelling of [events.tasks.action] enabled"),
    "identity": Key("bool", None, help="old spelling of [events.tasks.identity] enabled"),
}

ALERT = {
    "name": named(REQUIRED),
    "task": named(None, help="a task of the model (default: action, for swimmer configs "
                              "written before tasks were generic)"),
    "label": Key("text", None, help="classification: the label that fires"),
    "min_score": Key("number", None, *SCORE, help="classification: default 0.5"),
    "above": Key("number", None, *SCORE, help="regression: fires while the value is above this"),
    "below": Key("number", None, *SCORE, help="regression: fires while the value is below this"),
    "consecutive": Key("int", 1, 1, 10000),
    "cooldown_s": Key("number", 60.0, 0.0, 86400.0),
    "cameras": Key("list", None, item="str",
                   help="camera names the rule applies to (default: all)"),
}

JSONL = {
    "path": Key("text"),
    "max_bytes": Key("int", 10 * 1024 * 1024, 1024, 1 << 40),
    "keep": Key("int", 5, 0, 1000),
}

TLS = {
    "ca_file": Key("text", None),
    "cert_file": Key("text", None),
    "key_file": Key("text", None),
    "insecure": Key("bool", False, help="skip the broker hostname check (testing only)"),
}

MQTT = {
    "host": Key("text"),
    "port": Key("int", 1883, 1, 65535),
    "client_id": Key("text", None),
    "topic_prefix": Key("text", None),
    "username": Key("text", None),
    "password": Key("text", None),
    "password_file": Key("text", None),
    "keepalive_s": Key("int", 30, 5, 3600),
    "reconnect_min_s": Key("number", 0.5, 0.01, 3600.0),
    "reconnect_max_s": Key("number", 30.0, 0.01, 86400.0),
    "max_inflight": Key("int", 20, 1, 65535),
    "spool_dir": Key("text"),
    "spool_max_bytes": Key("int", 256 * 1024 * 1024, 4096, 1 << 40),
    "tls": Key("table", None, schema=Schema(TLS)),
}

HTTP = {
    "enabled": Key("bool", True),
    "bind": Key("text", "127.0.0.1"),
    "port": Key("int", 8765, 0, 65535, help="0 picks a free port (tests)"),
}

DAEMON = {
    "shutdown_timeout_s": Key("number", 5.0, 0.1, 600.0),
    "log_level": Key("text", "info", choices=("debug", "info", "warning", "error")),
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
    """Read and check ``path``; EdgekitError listing every problem found, with its line."""
    if _toml is None:  # pragma: no cover
        raise EdgekitError("reading TOML on Python < 3.11 needs tomli: pip install tomli")
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise EdgekitError("config file %s does not exist; start from examples/serve.toml" % path)
    try:
        with open(path, "rb") as handle:
            text = handle.read().decode("utf-8")
        raw = _toml.loads(text)
    except (OSError, ValueError) as exc:  # TOMLDecodeError and UnicodeDecodeError: ValueErrors
        raise EdgekitError("config file %s is not valid TOML: %s" % (path, exc))
    return parse_config(raw, path, text=text)


def parse_config(raw, path=None, text=None):
    """Check the parsed TOML dict ``raw`` against the schema; return a :class:`ServeConfig`.

    ``text``, the file's TOML source, lets every problem name its line.
    """
    base = os.path.dirname(os.path.abspath(path)) if path else os.getcwd()
    report = Report(path or "config", TomlLines(text) if text is not None else None, WORDING)
    for key in sorted(set(raw) - TOP):
        report.error((key,), "{path}: unknown section or key (allowed: {allowed})",
                     allowed=", ".join(sorted(TOP)))
    data = {"model": _section(raw, "model", MODEL, report) if "model" in raw else {}}
    if "model" not in raw:
        report.error(("model",), "{path}: required section missing")
    _finish_model(data["model"], raw.get("model"), base, report)
    data["cameras"] = _cameras(raw.get("cameras"), base, report)
    data["events"] = _events(raw, report)
    data["alerts"] = _alerts(raw.get("alerts", []), data["cameras"], report)
    data["outputs"] = _outputs(raw.get("outputs", {}), base, report)
    data["http"] = _section(raw, "http", HTTP, report)
    data["daemon"] = _section(raw, "daemon", DAEMON, report)
    report.raise_if_any()
    return ServeConfig(data, path)


def _section(raw, name, keys, report):
    """Top-level table ``name`` checked (defaults filled in when it is absent); {} if it is not
    a table."""
    return report.value(raw.get(name, {}), Schema(keys), (name,)) or {}


def _finish_model(model, given, base, report):
    for key in ("dir", "devices_file", "gallery"):
        if model.get(key):
            model[key] = resolve_path(base, model[key])
    if model.get("target") and isinstance(given, dict) and any(
            k in given for k in ("device", "delegate", "threads")):
        report.invalid(("model", "target"), "give a target or device/delegate/threads, not both")


def _cameras(cameras, base, report):
    if not isinstance(cameras, dict) or not cameras:
        report.error(("cameras",), "{path}: required; add at least one [cameras.NAME] table with "
                                   "a source")
        return {}
    out = {}
    for name, table in cameras.items():
        key_path = ("cameras", name)
        if not NAME_RE.match(name):
            report.invalid(key_path, "camera names may use " + NAMES_RULE)
        camera = report.value(table, Schema(CAMERA), key_path)
        if camera is None:
            continue
        if camera.get("reconnect_max_s") is not None and camera.get("reconnect_min_s") \
                and camera["reconnect_max_s"] < camera["reconnect_min_s"]:
            report.invalid(key_path + ("reconnect_max_s",), "must be >= reconnect_min_s")
        source = camera.get("source")
        if isinstance(source, str) and "://" not in source and not source.isdigit():
            camera["source"] = resolve_path(base, source)
        out[name] = camera
    if out and not any(c.get("enabled") for c in out.values()):
        report.error(("cameras",), "{path}: every camera is disabled; enable at least one")
    return out


def _events(raw, report):
    """[events] with its [events.tasks.NAME] tables checked (task names are checked against the
    model at start-up, :func:`edge.serve.model_check.model_problems`)."""
    events = _section(raw, "events", EVENTS, report)
    given = raw.get("events", {}).get("tasks") if isinstance(raw.get("events"), dict) else None
    events["tasks"] = {k: v for k, v in (events.get("tasks") or {}).items() if v is not None}
    for old in ("action", "identity"):
        if events.get(old) is not None and isinstance(given, dict) \
                and isinstance(given.get(old), dict) and "enabled" in given[old]:
            report.invalid(("events", old), "the old spelling of [events.tasks.%s] enabled; give "
                                            "one of them" % old)
    return events


def _alerts(alerts, cameras, report):
    """[[alerts]]: each rule is a classification rule (label, min_score) or a regression rule
    (above and/or below); which one the task is, is checked against the model at start-up."""
    checked = report.value(alerts, Key("tables", schema=Schema(ALERT),
                                       expected="an array of tables ([[alerts]])"), ("alerts",))
    rules, names = [], set()
    for i, rule in enumerate(checked or []):
        if rule is None:
            continue
        _alert_rules(rule, alerts[i], ("alerts", i), report)
        if rule.get("name") in names:
            report.invalid(("alerts", i, "name"), "%r is used by another rule; names must be "
                                                  "unique" % rule["name"])
        names.add(rule.get("name"))
        for camera in rule.get("cameras") or []:
            if cameras and camera not in cameras:
                report.invalid(("alerts", i, "cameras"), "no camera named %r (cameras: %s)"
                               % (camera, ", ".join(sorted(cameras))))
        rules.append(rule)
    return rules


def _alert_rules(rule, table, where, report):
    """The rules between one alert's keys: a classification rule or a regression rule."""
    threshold = rule.get("above") is not None or rule.get("below") is not None
    if rule.get("label") is None and not threshold and "label" not in table:
        report.invalid(where + ("label",), "required key missing (a classification rule names "
                                           "its label; a regression rule gives above and/or "
                                           "below instead)")
    elif rule.get("label") is not None and threshold:
        report.invalid(where, "label is for classification rules, above/below for regression "
                              "rules; give one or the other")
    if threshold and rule.get("min_score") is not None:
        report.invalid(where + ("min_score",), "only for classification rules (with label); a "
                                               "regression rule fires on above/below")
    if rule.get("above") is not None and rule.get("below") is not None \
            and not rule["below"] < rule["above"]:
        report.invalid(where, "with both, below (%s) must be less than above (%s): the rule "
                              "fires outside [below, above]" % (rule["below"], rule["above"]))


def _outputs(outputs, base, report):
    if not isinstance(outputs, dict):
        report.invalid(("outputs",), "must be a table, got %r" % (outputs,))
        return {}
    out = {}
    for key in sorted(set(outputs) - {"jsonl", "mqtt"}):
        report.invalid(("outputs", key), "unknown output (allowed: jsonl, mqtt)")
    if "jsonl" in outputs:
        jsonl = report.value(outputs["jsonl"], Schema(JSONL), ("outputs", "jsonl"))
        if jsonl is not None:
            if jsonl.get("path"):
                jsonl["path"] = resolve_path(base, jsonl["path"])
            out["jsonl"] = jsonl
    if "mqtt" in outputs:
        mqtt = report.value(outputs["mqtt"], Schema(MQTT), ("outputs", "mqtt"))
        if mqtt is not None:
            _finish_mqtt(mqtt, base, report)
            out["mqtt"] = mqtt
    if not out and not report.problems:
        report.invalid(("outputs",), "no output configured; add [outputs.jsonl] and/or "
                                     "[outputs.mqtt], or events go nowhere")
    return out


def _finish_mqtt(mqtt, base, report):
    def bad(key, message):
        report.invalid(("outputs", "mqtt") + ((key,) if key else ()), message)

    host = socket.gethostname().split(".")[0] or "camera"
    mqtt["client_id"] = mqtt.get("client_id") or "edgekit-%s" % host
    prefix = mqtt.get("topic_prefix") or "edgekit/%s" % host
    if any(c in prefix for c in "#+") or prefix.startswith("/") or prefix.endswith("/"):
        bad("topic_prefix", "%r must not contain # or + nor start or end with /" % prefix)
    mqtt["topic_prefix"] = prefix
    if mqtt.get("password") is not None and mqtt.get("password_file") is not None:
        bad(None, "give password or password_file, not both")
    if (mqtt.get("password") is not None or mqtt.get("password_file")) and not mqtt.get("username"):
        bad("username", "required when a password is given")
    for key in ("password_file", "spool_dir"):
        if mqtt.get(key):
            mqtt[key] = resolve_path(base, mqtt[key])
    if (mqtt.get("reconnect_max_s") or 0) < (mqtt.get("reconnect_min_s") or 0):
        bad("reconnect_max_s", "must be >= reconnect_min_s")
    tls = mqtt.get("tls")
    if tls is not None:
        for key in ("ca_file", "cert_file", "key_file"):
            if tls.get(key):
                tls[key] = resolve_path(base, tls[key])
        if bool(tls.get("cert_file")) != bool(tls.get("key_file")):
            report.invalid(("outputs", "mqtt", "tls"), "cert_file and key_file go together")


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
