"""The output directory: atomic replacement, sizes, the device manifest and the report.

Everything is written into a hidden temp directory beside ``--out`` and renamed into place only
when every file is complete, so an interrupted run leaves ``--out`` untouched (or absent) —
never a directory with some models and no manifest. An existing ``--out`` is replaced only if it
is empty or an earlier ``edgekit quantize`` output (it has a manifest.json), so a typo cannot
wipe an unrelated folder.
"""

import contextlib
import datetime
import os

from edge.atomic import atomic_dir, write_json, write_text
from edge.errors import EdgekitError
from edge.manifest import MANIFEST_NAME, InputSpec, Manifest, TaskSpec, WindowInput
from edge.tflite_inspect import describe_model, sizes  # noqa: F401 (sizes: used as artifacts.sizes)


def check_out_dir(out):
    if os.path.exists(out) and not os.path.isdir(out):
        raise EdgekitError("--out %s is a file; give a directory" % out)
    if os.path.isdir(out) and os.listdir(out) and not os.path.isfile(os.path.join(out, MANIFEST_NAME)):
        raise EdgekitError("--out %s exists and is not an edgekit model directory; choose a new or "
                           "empty directory" % out)


@contextlib.contextmanager
def staging_dir(out):
    """Yield a temp directory beside ``out``; on success it replaces ``out`` in one rename."""
    check_out_dir(out)
    with atomic_dir(out) as tmp:
        yield tmp


def write_model(directory, name, blob):
    path = os.path.join(directory, name)
    with open(path, "wb") as handle:
        handle.write(blob)
    return path


def manifest_tasks(config):
    tasks = []
    for task in config.tasks:
        labels = list(task.labels) if task.kind == "classification" else []
        tasks.append(TaskSpec(task.name, task.kind, labels, task.name))
        if task.embedding:
            tasks.append(TaskSpec(task.embedding_output, "embedding", [], task.embedding_output))
    return tasks


def build_manifest(directory, config, method, sparsity, feature_shape, model_files, versions,
                   normalization, default_stride=1, variant_files=None, window=None):
    """The edge-side :class:`Manifest` for the model files ``{role: file name}`` in ``directory``
    and the backend variants ``{variant: {role: file name}}`` (e.g. the Edge TPU frame model).

    ``window``: the head inputs and how the ring makes them (:func:`quantize.streaming.window_inputs`);
    None: the frame model's one output stacked into the head's one input (a split without the
    streaming head, e.g. a hand-made directory)."""
    models = {role: describe_model(os.path.join(directory, name)) for role, name in model_files.items()}
    variants = {variant: {role: describe_model(os.path.join(directory, name))
                          for role, name in files.items()}
                for variant, files in (variant_files or {}).items()}
    if window is None:
        window = [WindowInput(input=models["head"].inputs[0].name,
                              source=models["frame"].outputs[0].name, reduce="stack")]
    return Manifest(variants=variants, window=list(window),
        name=config.name, backbone=config.backbone, method=method,
        sparsity=float(sparsity) if sparsity is not None else None,
        created=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        tool_versions=dict(versions),
        input=InputSpec(height=config.height, width=config.width, channels=3, colour_order="RGB",
                        value_range=[0.0, 255.0], normalization=dict(normalization)),
        clip_length=config.clip_length, default_stride=int(default_stride),
        feature_shape=[int(v) for v in feature_shape], tasks=manifest_tasks(config), models=models)


def _metric_cell(metrics, task):
    m = metrics.get(task) if metrics else None
    if not m:
        return "-"
    if "accuracy" in m:
        text = "%.3f" % m["accuracy"]
        if "rank1" in m:
            text += "/r1 %.3f" % m["rank1"]
        return text
    return "MAE %.3f" % m["mae"]


def format_report(report):
    """The readable table printed by the CLI and saved as report.txt."""
    lines = ["edgekit quantize: method %s%s, run %s" % (
        report["method"], " (sparsity %.2f)" % report["sparsity"] if report.get("sparsity") else "",
        report["run"])]
    lines.append("")
    lines.append("%-10s %10s %10s %8s  %s" % ("artifact", "raw", "gzip", "params", "ops"))
    for role, art in report["artifacts"].items():
        lines.append("%-10s %10d %10d %8s  %s" % (role, art["raw_bytes"], art["gzip_bytes"],
                                                   art.get("params", "-"), ",".join(art["ops"])))
    tasks = list(report["metrics"].get("float_keras", {}))
    lines.append("")
    lines.append("%-22s " % "model" + " ".join("%-20s" % t for t in tasks))
    for key, label in (("float_keras", "float Keras"), ("fake_quant_keras", "fake-quant Keras"),
                       ("tflite", "TFLite frame+head"), ("tflite_clip", "TFLite clip")):
        if key in report["metrics"]:
            lines.append("%-22s " % label + " ".join("%-20s" % _metric_cell(report["metrics"][key], t)
                                                     for t in tasks))
    if report.get("head_quantization"):
        lines.append("")
        lines.append("head: %s" % report["head_quantization"])
    repaired = {role: entry["biases_repaired"] for role, entry in report.get("artifacts", {}).items()
                if entry.get("biases_repaired")}
    if repaired:
        lines.append("int8 biases re-quantized at the scale their op reads them (a converter "
                     "defect, see quantize/quantization/bias_scale.py): " + ", ".join(
                         "%s %d" % item for item in sorted(repaired.items())))
    if report.get("sparsity_per_layer"):
        lines.append("achieved sparsity: %.3f overall; %s" % (
            report["sparsity_overall"],
            ", ".join("%s %.2f" % kv for kv in report["sparsity_per_layer"].items())))
    if report.get("layer_errors_worst"):
        lines.append("lowest-SNR frame ops: " + ", ".join(
            "%s %s %.1f dB" % (r["op"], r["tensor"].split(";")[0].split("/")[-2:][0], r["snr_db"])
            for r in report["layer_errors_worst"]))
    if report.get("edgetpu"):
        lines.append("edge tpu: " + report["edgetpu"]["summary"])
        lines.append("          " + report["edgetpu"]["compile"])
    for warning in report.get("warnings", []):
        lines.append("warning: " + warning)
    return "\n".join(lines)


def write_reports(directory, report):
    write_json(os.path.join(directory, "report.json"), report)
    text = format_report(report)
    write_text(os.path.join(directory, "report.txt"), text + "\n")
    return text
