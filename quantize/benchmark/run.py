"""``edgekit bench``: every artifact on every named target, assembled into one results document.

Order of work: read devices.toml and every manifest first (an unknown device, a missing or
mismatched model file, an artifact the target's variant cannot run are refused before anything
is copied or timed), load the eval clips once per distinct (data, T, size), then per target open a
:class:`~quantize.benchmark.targets.Session`, stage models, clips and one job per artifact, upload
(ssh), run ``edge.bench.device`` once per artifact (a fresh process: its peak RSS is the
artifact's), fetch its JSON and score its outputs here. No TensorFlow is imported.
"""

import json
import os
import sys
import time
from dataclasses import dataclass, field

from edge.devices import get_device, load_devices
from edge.errors import EdgekitError
from edge.manifest import MANIFEST_NAME, Manifest
from quantize.benchmark import evalset as evalsets
from quantize.benchmark.results import SCHEMA, host_info, now
from quantize.benchmark.targets import Session
from quantize.quantization.artifacts import sizes

DEFAULTS = dict(runs=50, min_seconds=1.0, max_seconds=150.0, warmup_runs=1, warmup_seconds=0.5,
                fps=30.0, pace_seconds=5.0, stride=None, camera=(480, 640), max_clips=None)


@dataclass
class Artifact:
    name: str
    path: str
    manifest: Manifest
    report: dict = field(default_factory=dict)


def discover(paths):
    """Artifacts from --model paths: a model directory, or a folder of model directories."""
    found = []
    for path in paths:
        path = os.path.abspath(os.fspath(path))
        if not os.path.isdir(path):
            raise EdgekitError("--model %s does not exist; give a folder written by 'edgekit "
                               "quantize' (or a folder of them)" % path)
        if os.path.isfile(os.path.join(path, MANIFEST_NAME)):
            found.append(path)
            continue
        subs = sorted(os.path.join(path, d) for d in os.listdir(path)
                      if os.path.isfile(os.path.join(path, d, MANIFEST_NAME)))
        if not subs:
            raise EdgekitError("--model %s has no manifest.json, nor do its subfolders; point it "
                               "at the --out folder of 'edgekit quantize'" % path)
        found.extend(subs)
    artifacts, names = [], set()
    for path in found:
        manifest = Manifest.load(path)
        name = os.path.basename(path)
        if name in names:
            name = "%s/%s" % (os.path.basename(os.path.dirname(path)), name)
        if name in names:
            raise EdgekitError("--model lists %s twice" % path)
        names.add(name)
        report = {}
        report_path = os.path.join(path, "report.json")
        if os.path.isfile(report_path):
            try:
                with open(report_path) as handle:
                    report = json.load(handle)
            except (OSError, ValueError):
                report = {}
        artifacts.append(Artifact(name, path, manifest, report))
    return artifacts


def roles_for(artifact, device):
    """The models timed on ``device``: its frame model, the head, and the clip model on CPU/GPU."""
    manifest = artifact.manifest
    role = device.frame_role
    if role not in manifest.models:
        raise EdgekitError(
            "device %s runs Edge TPU models (variant = \"edgetpu\") but artifact %s (%s) has no "
            "frame_edgetpu model; quantize it with --target coral (needs edgetpu_compiler) or "
            "bench it on a CPU target" % (device.name, artifact.name, artifact.path))
    roles = [role, "head"]
    if device.variant == "tflite" and "clip" in manifest.models:
        roles.append("clip")
    manifest.verify(artifact.path, roles=roles)
    return roles


def delegate_name(device):
    return {"xnnpack": "XNNPACK", "edgetpu": "EdgeTPU", "gpu": "GPU"}.get(
        device.delegate, os.path.basename(device.delegate))


def device_config(device):
    keys = ("name", "description", "transport", "host", "user", "port", "python", "threads",
            "delegate", "delegate_path", "edgetpu_device", "variant", "power", "source", "emulated")
    return {k: getattr(device, k) for k in keys}


class Progress(object):
    def __init__(self, stream=None):
        self.stream = stream or sys.stderr
        self.started = time.time()

    def __call__(self, message):
        self.stream.write("[%6.1fs] %s\n" % (time.time() - self.started, message))
        self.stream.flush()


def run_bench(device_names, model_paths, data_dir=None, devices_file=None, threads=None,
              progress=None, command=None, **settings):
    """The results document (see :mod:`quantize.benchmark.results`)."""
    progress = progress or Progress()
    options = dict(DEFAULTS)
    unknown = set(settings) - set(options)
    if unknown:
        raise TypeError("unknown settings %s" % sorted(unknown))  # pragma: no cover
    options.update({k: v for k, v in settings.items() if v is not None})
    _check_settings(options, threads)
    devices_all = load_devices(devices_file)
    devices = [get_device(devices_all, name, devices_file or "devices.toml")
               for name in device_names]
    if threads:
        for device in devices:
            device.threads = int(threads)
    artifacts = discover(model_paths)
    plan = [(device, artifact, roles_for(artifact, device))
            for device in devices for artifact in artifacts]

    cache, evals = {}, {}
    for artifact in artifacts:
        evals[artifact.name] = evalsets.resolve(artifact.manifest, artifact.path, data_dir,
                                                options["max_clips"], cache)
        found, reason = evals[artifact.name]
        progress("%s: eval set: %s" % (artifact.name, "%d clips, %s" % (len(found.names),
                                                                       found.source)
                                       if found else "none (%s)" % reason))

    document = {"schema": SCHEMA, "created": now(), "command": list(command or sys.argv),
                "host": host_info(),
                "settings": {k: (list(v) if isinstance(v, tuple) else v)
                             for k, v in options.items()},
                "targets": {}, "records": []}
    total = len(plan)
    done = 0
    for device in devices:
        mine = [(a, roles) for d, a, roles in plan if d is device]
        progress("target %s (%s): %d artifact(s)" % (device.name, "ssh " + device.destination
                                                     if device.is_remote else "local", len(mine)))
        with Session(device, progress) as session:
            jobs = []
            staged_evals = {}
            os.makedirs(os.path.join(session.stage, "results"), exist_ok=True)
            for artifact, roles in mine:
                model_dir = session.stage_model_dir(_safe(artifact.name), artifact.path, roles)
                found, _ = evals[artifact.name]
                eval_path = None
                if found is not None:
                    if found.key not in staged_evals:
                        local = session.staged("eval", "eval%d.npz" % len(staged_evals))
                        evalsets.save(found, local)
                        staged_evals[found.key] = session.target_path(local)
                    eval_path = staged_evals[found.key]
                job = {"artifact": artifact.name, "model_dir": model_dir,
                       "device": device.runtime_device, "delegate": device.runtime_delegate,
                       "delegate_name": delegate_name(device), "frame_role": device.frame_role,
                       "threads": device.threads, "roles": roles, "runs": options["runs"],
                       "min_seconds": options["min_seconds"],
                       "max_seconds": options["max_seconds"],
                       "warmup_runs": options["warmup_runs"],
                       "warmup_seconds": options["warmup_seconds"], "stride": options["stride"],
                       "fps": options["fps"], "pace_seconds": options["pace_seconds"],
                       "camera": list(options["camera"]), "eval": eval_path,
                       "power": device.power, "power_interval_ms": device.power_interval_ms,
                       "seed": 0}
                job_local = session.staged("jobs", _safe(artifact.name) + ".json")
                with open(job_local, "w") as handle:
                    json.dump(job, handle, indent=1)
                out_local = os.path.join(session.stage, "results", _safe(artifact.name) + ".json")
                jobs.append((artifact, roles, session.target_path(job_local),
                             session.target_path(out_local)))
            session.upload()
            for artifact, roles, job_path, out_path in jobs:
                done += 1
                progress("[%d/%d] %s x %s" % (done, total, device.name, artifact.name))
                code, tail = session.run_module("device", [job_path, out_path],
                                                label="the bench of %s" % artifact.name)
                result = session.fetch_json(out_path)
                if result is None:
                    raise EdgekitError("device %s: the bench of %s failed (exit %d) without a "
                                       "result; the device said: %s" % (
                                           device.name, artifact.name, code,
                                           " | ".join(tail[-5:]) or "nothing"))
                if "error" in result:
                    detail = [l for l in tail if not l.startswith("INFO:")][-3:]
                    raise EdgekitError("device %s, artifact %s: %s%s" % (
                        device.name, artifact.name, result["error"],
                        " (device stderr: %s)" % " | ".join(detail)
                        if detail and code != 2 else ""))
                record = assemble(device, artifact, roles, result, evals[artifact.name])
                document["records"].append(record)
                document["targets"].setdefault(device.name, {
                    "config": device_config(device), "machine": result.get("machine")})
                progress("%s x %s: %s" % (device.name, artifact.name, one_line(record)))
    return document


def _check_settings(options, threads):
    def bad(name, message):
        raise EdgekitError("--%s %s" % (name, message))

    if int(options["runs"]) < 1:
        bad("runs", "must be >= 1, got %s" % options["runs"])
    if float(options["min_seconds"]) < 0:
        bad("min-seconds", "must be >= 0, got %s" % options["min_seconds"])
    if float(options["fps"]) <= 0:
        bad("fps", "must be > 0, got %s" % options["fps"])
    if float(options["pace_seconds"]) <= 0:
        bad("pace-seconds", "must be > 0, got %s" % options["pace_seconds"])
    if options["stride"] is not None and int(options["stride"]) < 1:
        bad("stride", "must be >= 1, got %s" % options["stride"])
    if threads is not None and int(threads) < 1:
        bad("threads", "must be >= 1, got %s" % threads)
    if options["max_clips"] is not None and int(options["max_clips"]) < 1:
        bad("max-clips", "must be >= 1, got %s" % options["max_clips"])


def _safe(name):
    return name.replace("/", "__")


def assemble(device, artifact, roles, result, evaluation):
    manifest = artifact.manifest
    found, reason = evaluation
    size = {role: sizes(manifest.model_path(artifact.path, role))
            for role in manifest.models}
    deployed = {k: size[device.frame_role][k] + size["head"][k]
                for k in ("raw_bytes", "gzip_bytes")}
    params = None
    report = artifact.report or {}
    if report.get("artifacts") or report.get("parameters"):
        params = {role: (report.get("artifacts", {}).get(role) or {}).get("params")
                  for role in ("frame", "head", "clip")}
        params["blocks"] = report.get("parameters")
    accuracy, eval_info = None, {"skipped": reason}
    if found is not None and result.get("eval_outputs") is not None:
        accuracy = evalsets.score_outputs(found, result["eval_outputs"])
        eval_info = {"source": found.source, "clips": len(found.names)}
    return {
        "target": device.name, "emulated": device.emulated,
        "artifact": artifact.name, "model_dir": artifact.path,
        "name": manifest.name, "backbone": manifest.backbone, "method": manifest.method,
        "sparsity": manifest.sparsity, "clip_length": manifest.clip_length,
        "input": [manifest.input.height, manifest.input.width],
        "frame_role": device.frame_role, "params": params, "size": size, "deployed": deployed,
        "latency": result["latency"], "placement": result["placement"],
        "streaming": result["streaming"], "paced": result["paced"], "accuracy": accuracy,
        "eval": eval_info, "power": result.get("power"), "peak_rss_mb": result["peak_rss_mb"],
        "device_seconds": result["seconds"],
    }


def one_line(record):
    role = record["frame_role"]
    frame = record["latency"][role]
    scores = evalsets.headline(record.get("accuracy"))
    return "frame p50 %.3f ms, head p50 %.3f ms, %.3f ms/decision, %s, RSS %.0f MB" % (
        frame["p50_ms"], record["latency"]["head"]["p50_ms"],
        record["streaming"]["cost_per_decision_ms"],
        ", ".join("%s %.3f" % (k, v) for k, v in scores.items() if v is not None)
        or "no accuracy", record["peak_rss_mb"])
