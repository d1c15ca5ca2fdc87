"""``edgekit bench``: every artifact on every named target, assembled into one results document.

Order of work: read devices.toml and every manifest first (an unknown device, a missing or
mismatched model file, an artifact the target's variant cannot run are refused before anything
is copied or timed), load the eval clips once per distinct (data, T, size), then per target open a
:class:`~edge.bench.remote.Session`, stage models, clips and one job per artifact, upload
(ssh), run ``edge.bench.device`` once per artifact (a fresh process: its peak RSS is the
artifact's), fetch its JSON and score its outputs here.

An artifact is a model directory of ``edgekit quantize`` (manifest + frame/head/clip models:
latency per model, streaming, paced run, accuracy) or a plain ``.tflite`` file that edgekit need
not have made (latency, size, op placement, memory; no accuracy, there is no manifest).

No TensorFlow and nothing of ``quantize/`` is imported, so ``pip install 'edgekit[device,bench]'``
on a board runs all of it there: ``edgekit bench --device local`` needs no devices.toml.
"""

import json
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Optional

from edge.bench import evalset as evalsets
from edge.bench.remote import Session
from edge.bench.report import SCHEMA, host_info, now
from edge.devices import Device, default_devices_path, get_device, load_devices
from edge.errors import EdgekitError
from edge.atomic import write_text
from edge.manifest import MANIFEST_NAME, Manifest
from edge.tflite_inspect import sizes

DEFAULTS = dict(runs=50, min_seconds=1.0, max_seconds=150.0, warmup_runs=1, warmup_seconds=0.5,
                fps=30.0, pace_seconds=5.0, stride=None, camera=(480, 640), max_clips=None,
                profile=False)
LOCAL = "local"
NO_ACCURACY = "a plain .tflite file has no manifest: accuracy is not measured"


@dataclass
class Artifact:
    name: str
    path: str
    manifest: Optional[Manifest]  # None: a plain .tflite file
    report: dict = field(default_factory=dict)

    @property
    def is_file(self):
        return self.manifest is None


def local_device():
    """The built-in target ``local``: this machine, the interpreter's defaults, XNNPACK.

    What a board needs to bench itself after ``pip install 'edgekit[device,bench]'``, where no
    devices.toml exists; a ``[devices.local]`` table, where one does, takes precedence.
    """
    return Device(name=LOCAL, source="built in", transport="local",
                  description="this machine (built in: --device local needs no devices.toml)")


def load_targets(devices_file=None, names=()):
    """{name: Device} of devices.toml plus the built-in ``local`` where the file lacks one.

    The file is read when it exists or was named (``--devices``); without one, only ``local``
    is known.
    """
    path = devices_file or default_devices_path()
    devices = {}
    if devices_file or os.path.isfile(path) or any(n != LOCAL for n in names):
        if not os.path.isfile(path):
            raise EdgekitError("devices file %s does not exist; pass --devices FILE, set "
                               "EDGEKIT_DEVICES, or bench this machine with --device local "
                               "(built in, needs no devices file)" % path)
        devices = load_devices(devices_file)
    if LOCAL not in devices:
        devices[LOCAL] = local_device()
    return devices


def _manifest_artifact(path):
    report = {}
    report_path = os.path.join(path, "report.json")
    if os.path.isfile(report_path):
        try:
            with open(report_path) as handle:
                report = json.load(handle)
        except (OSError, ValueError):
            report = {}
    return Manifest.load(path), report


def _found(path):
    """Model directories and .tflite files named by one --model path."""
    if os.path.isfile(path):
        if not path.lower().endswith(".tflite"):
            raise EdgekitError("--model %s is a file but not a .tflite model; give a .tflite "
                               "file or a folder written by 'edgekit quantize'" % path)
        return [path]
    if not os.path.isdir(path):
        raise EdgekitError("--model %s does not exist; give a .tflite file or a folder written "
                           "by 'edgekit quantize' (or a folder of them)" % path)
    if os.path.isfile(os.path.join(path, MANIFEST_NAME)):
        return [path]
    subs = sorted(os.path.join(path, d) for d in os.listdir(path)
                  if os.path.isfile(os.path.join(path, d, MANIFEST_NAME)))
    if not subs:
        raise EdgekitError("--model %s has no manifest.json, nor do its subfolders; point it "
                           "at the --out folder of 'edgekit quantize' or at a .tflite file"
                           % path)
    return subs


def discover(paths):
    """Artifacts from --model paths: a .tflite file, a model directory or a folder of them."""
    artifacts, names = [], set()
    for found in (_found(os.path.abspath(os.fspath(p))) for p in paths):
        for path in found:
            name = os.path.basename(path)
            if name in names:
                name = "%s/%s" % (os.path.basename(os.path.dirname(path)), name)
            if name in names:
                raise EdgekitError("--model lists %s twice" % path)
            names.add(name)
            if os.path.isfile(path):
                artifacts.append(Artifact(name, path, None))
            else:
                artifacts.append(Artifact(name, path, *_manifest_artifact(path)))
    return artifacts


def roles_for(artifact, device):
    """The models timed on ``device``: the frame model of its backend's variant, the head, and
    the clip model where the variant is the plain one (a .tflite file: role ``model``)."""
    if artifact.is_file:
        return ["model"]
    manifest = artifact.manifest
    variant = device.variant
    if variant != "tflite" and variant not in manifest.variants:
        raise EdgekitError(
            "device %s runs %s models (backend %s) but artifact %s (%s) has no %s variant; "
            "quantize it with --target coral (needs edgetpu_compiler) or bench it on a CPU "
            "target" % (device.name, variant, device.backend, artifact.name, artifact.path,
                        variant))
    manifest.verify(artifact.path, roles=["frame"], variant=variant)
    roles = manifest.runtime_roles()
    if variant == "tflite" and "clip" in manifest.models:
        roles.append("clip")
    manifest.verify(artifact.path, roles=roles[1:])
    return roles


def device_config(device):
    keys = ("name", "description", "transport", "host", "user", "port", "python", "threads",
            "backend", "backend_options", "variant", "power", "source", "emulated")
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
    """The results document (see :mod:`edge.bench.report`)."""
    progress = progress or Progress()
    options = dict(DEFAULTS)
    unknown = set(settings) - set(options)
    if unknown:
        raise TypeError("unknown settings %s" % sorted(unknown))  # pragma: no cover
    options.update({k: v for k, v in settings.items() if v is not None})
    _check_settings(options, threads)
    known = load_targets(devices_file, device_names)
    devices = [get_device(known, name, devices_file or default_devices_path())
               for name in device_names]
    if threads:
        for device in devices:
            device.threads = int(threads)
    artifacts = discover(model_paths)
    plan = [(device, artifact, roles_for(artifact, device))
            for device in devices for artifact in artifacts]
    evals = _eval_sets(artifacts, data_dir, options["max_clips"], progress)
    document = {"schema": SCHEMA, "created": now(), "command": list(command or sys.argv),
                "host": host_info(),
                "settings": {k: (list(v) if isinstance(v, tuple) else v)
                             for k, v in options.items()},
                "targets": {}, "records": []}
    counter = [0, len(plan)]
    for device in devices:
        mine = [(a, roles) for d, a, roles in plan if d is device]
        progress("target %s (%s): %d artifact(s)" % (device.name, "ssh " + device.destination
                                                     if device.is_remote else "local", len(mine)))
        with Session(device, progress) as session:
            jobs = _stage_jobs(session, device, mine, evals, options)
            session.upload()
            for artifact, roles, job_path, out_path in jobs:
                counter[0] += 1
                progress("[%d/%d] %s x %s" % (counter[0], counter[1], device.name, artifact.name))
                result = _run_job(session, device, artifact, job_path, out_path)
                record = assemble(device, artifact, roles, result, evals[artifact.name])
                document["records"].append(record)
                document["targets"].setdefault(device.name, {
                    "config": device_config(device), "machine": result.get("machine")})
                progress("%s x %s: %s" % (device.name, artifact.name, one_line(record)))
    return document


def _eval_sets(artifacts, data_dir, max_clips, progress):
    """{artifact name: (EvalSet or None, reason)}, clips loaded once per distinct set."""
    cache, evals = {}, {}
    for artifact in artifacts:
        if artifact.is_file:
            evals[artifact.name] = (None, NO_ACCURACY)
        else:
            evals[artifact.name] = evalsets.resolve(artifact.manifest, artifact.path, data_dir,
                                                    max_clips, cache)
        found, reason = evals[artifact.name]
        progress("%s: eval set: %s" % (artifact.name, "%d clips, %s" % (len(found.names),
                                                                       found.source)
                                       if found else "none (%s)" % reason))
    return evals


def _job(device, options, eval_path):
    keys = ("runs", "min_seconds", "max_seconds", "warmup_runs", "warmup_seconds", "stride",
            "fps", "pace_seconds", "profile")
    job = {k: options[k] for k in keys}
    job.update({"backend": device.backend, "backend_options": dict(device.backend_options),
                "variant": device.variant, "threads": device.threads, "camera": list(options["camera"]),
                "eval": eval_path, "power": device.power,
                "power_interval_ms": device.power_interval_ms, "seed": 0})
    return job


def _stage_jobs(session, device, mine, evals, options):
    """Stage models, eval clips and one job file per artifact; [(artifact, roles, job, out)]."""
    jobs, staged_evals = [], {}
    os.makedirs(os.path.join(session.stage, "results"), exist_ok=True)
    for artifact, roles in mine:
        found, _ = evals[artifact.name]
        eval_path = None
        if found is not None:
            if found.key not in staged_evals:
                local = session.staged("eval", "eval%d.npz" % len(staged_evals))
                evalsets.save(found, local)
                staged_evals[found.key] = session.target_path(local)
            eval_path = staged_evals[found.key]
        job = dict(_job(device, options, eval_path), artifact=artifact.name, roles=roles)
        if artifact.is_file:
            job["model_file"] = session.stage_file(_safe(artifact.name), artifact.path)
        else:
            job["model_dir"] = session.stage_model_dir(_safe(artifact.name), artifact.path,
                                                       roles, device.variant)
        job_local = session.staged("jobs", _safe(artifact.name) + ".json")
        write_text(job_local, json.dumps(job, indent=1))
        out_local = os.path.join(session.stage, "results", _safe(artifact.name) + ".json")
        jobs.append((artifact, roles, session.target_path(job_local),
                     session.target_path(out_local)))
    return jobs


def _run_job(session, device, artifact, job_path, out_path):
    """Run one job on the target; its result, or one EdgekitError line with what it said."""
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
    return result


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


def _assemble_file(device, artifact, result, reason):
    size = sizes(artifact.path)
    return {
        "target": device.name, "emulated": device.emulated, "artifact": artifact.name,
        "kind": "tflite",
        "model_path": artifact.path, "frame_role": "model", "method": None, "params": None,
        "size": {"model": size}, "deployed": dict(size), "latency": result["latency"],
        "placement": result["placement"], "streaming": None, "paced": None, "accuracy": None,
        "eval": {"skipped": reason}, "power": result.get("power"),
        "rss_before_load_mb": result.get("rss_before_load_mb"),
        "peak_rss_mb": result["peak_rss_mb"], "device_seconds": result["seconds"],
        "profile": result.get("profile"),
    }


def assemble(device, artifact, roles, result, evaluation):
    found, reason = evaluation
    if artifact.is_file:
        return _assemble_file(device, artifact, result, reason)
    manifest = artifact.manifest
    size = {role: sizes(manifest.model_path(artifact.path, role))
            for role in manifest.models}
    frame_size = sizes(manifest.model_path(artifact.path, "frame", device.variant))
    deployed = {k: frame_size[k] + sum(size[role][k] for role in manifest.runtime_roles()
                                       if role != "frame")
                for k in ("raw_bytes", "gzip_bytes")}
    params = None
    report = artifact.report or {}
    if report.get("artifacts") or report.get("parameters"):
        params = {role: (report.get("artifacts", {}).get(role) or {}).get("params")
                  for role in ("frame", "step", "head", "clip") if role in manifest.models}
        params["blocks"] = report.get("parameters")
    accuracy, eval_info = None, {"skipped": reason}
    if found is not None and result.get("eval_outputs") is not None:
        accuracy = evalsets.score_outputs(found, result["eval_outputs"])
        eval_info = {"source": found.source, "clips": len(found.names)}
    return {
        "target": device.name, "emulated": device.emulated, "artifact": artifact.name,
        "kind": "model_dir",
        "model_dir": artifact.path,
        "name": manifest.name, "backbone": manifest.backbone, "method": manifest.method,
        "sparsity": manifest.sparsity, "clip_length": manifest.clip_length,
        "input": [manifest.input.height, manifest.input.width],
        "frame_role": "frame", "variant": device.variant, "params": params, "size": size,
        "deployed": deployed,
        "latency": result["latency"], "placement": result["placement"],
        "streaming": result["streaming"], "paced": result["paced"], "accuracy": accuracy,
        "eval": eval_info, "power": result.get("power"), "peak_rss_mb": result["peak_rss_mb"],
        "device_seconds": result["seconds"], "profile": result.get("profile"),
    }


def one_line(record):
    role = record["frame_role"]
    frame = record["latency"][role]
    if record.get("kind") == "tflite":
        return "p50 %.3f ms, p99 %.3f ms, init %.1f ms, %s, RSS %.0f MB, no accuracy" % (
            frame["p50_ms"], frame["p99_ms"], frame["init_ms"],
            _placed(record["placement"]["model"]), record["peak_rss_mb"])
    scores = evalsets.headline(record.get("accuracy"))
    return "frame p50 %.3f ms, head p50 %.3f ms, %.3f ms/decision, %s, RSS %.0f MB" % (
        frame["p50_ms"], record["latency"]["head"]["p50_ms"],
        record["streaming"]["cost_per_decision_ms"],
        ", ".join("%s %.3f" % (k, v) for k, v in scores.items() if v is not None)
        or "no accuracy", record["peak_rss_mb"])


def _placed(where):
    if not where.get("available"):
        return "placement unavailable"
    return "%d/%d nodes on %s" % (where["delegated"], where["nodes"], where["delegate"])
