"""Per-task metrics from model outputs: the one scoring function for Keras, fake-quant and TFLite.

Pure numpy (no TensorFlow), and on the device side, so the same code scores a Keras model on the
host (``edgekit eval``, ``edgekit train``, report.json), the TFLite files run by the device
runtime (report.json, ``edgekit bench``) and a benchmark run on a board with no host package.

Tasks are described by duck typing: anything with ``name``, ``kind`` ("classification" |
"regression"), ``labels`` and ``embedding_output`` (the name of its embedding output, or None):
a ``quantize.config.TaskSpec`` as it is, or :func:`manifest_tasks` of a device manifest.
"""

from collections import namedtuple

import numpy as np

ScoredTask = namedtuple("ScoredTask", "name kind labels embedding_output")


def confusion_matrix(truth, predicted, num_classes):
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(truth, dtype=np.int64), np.asarray(predicted, dtype=np.int64)), 1)
    return matrix


def macro_f1(matrix):
    """Unweighted mean of per-class F1; a class never predicted nor present counts as F1 = 0."""
    true_positive = np.diag(matrix).astype(np.float64)
    precision_den = matrix.sum(axis=0)
    recall_den = matrix.sum(axis=1)
    denominator = precision_den + recall_den
    f1 = np.divide(2 * true_positive, denominator, out=np.zeros_like(true_positive),
                   where=denominator > 0)
    return float(f1.mean())


def rank1(embeddings, identities):
    """Leave-one-out rank-1 re-identification: is each clip's nearest other clip (cosine) the same person?"""
    embeddings = np.asarray(embeddings, dtype=np.float64)
    identities = np.asarray(identities)
    if len(identities) < 2:
        return float("nan")
    norms = np.linalg.norm(embeddings, axis=1, keepdims=True)
    unit = embeddings / np.maximum(norms, 1e-12)
    similarity = unit @ unit.T
    np.fill_diagonal(similarity, -np.inf)
    return float(np.mean(identities[np.argmax(similarity, axis=1)] == identities))


def manifest_tasks(manifest):
    """The scored tasks of a device manifest (``edge.manifest.Manifest``): its classification
    and regression tasks, each with the embedding output that belongs to it, if any."""
    outputs = {t.name for t in manifest.tasks}
    return [ScoredTask(t.name, t.kind, list(t.labels),
                       t.name + "_embedding" if t.name + "_embedding" in outputs else None)
            for t in manifest.tasks if t.kind in ("classification", "regression")]


def score(config, outputs, targets):
    """Metrics per task of ``config`` from ``outputs`` (name -> array) against ``targets``.

    ``config``: a model config (its ``tasks``) or a list of tasks (see the module docstring).
    Classification: accuracy, macro-F1, confusion matrix (rows truth, columns prediction) and,
    for a task with an embedding, leave-one-out rank-1. Regression: MAE and RMSE.
    """
    result = {}
    for task in getattr(config, "tasks", config):
        predicted = np.asarray(outputs[task.name])
        truth = np.asarray(targets[task.name])
        count = int(len(truth))
        if task.kind == "classification":
            labels = np.argmax(predicted, axis=-1)
            matrix = confusion_matrix(truth, labels, len(task.labels))
            metrics = {
                "accuracy": float(np.mean(labels == truth)) if count else float("nan"),
                "macro_f1": macro_f1(matrix),
                "confusion": matrix.tolist(),
                "labels": list(task.labels),
                "count": count,
            }
            if task.embedding_output and task.embedding_output in outputs:
                metrics["rank1"] = rank1(outputs[task.embedding_output], truth)
        else:
            error = predicted.reshape(-1).astype(np.float64) - truth.reshape(-1)
            metrics = {"mae": float(np.mean(np.abs(error))), "rmse": float(np.sqrt(np.mean(error ** 2))),
                       "count": count}
        result[task.name] = metrics
    return result


def headline(metrics):
    """One number per task for tables: accuracy for classes, MAE for regression."""
    return {name: (m["accuracy"] if "accuracy" in m else m["mae"]) for name, m in metrics.items()}


def format_table(metrics):
    """A small fixed-width table of the per-task metrics."""
    lines = ["%-12s %9s %9s %9s %7s" % ("task", "accuracy", "macro-F1", "MAE/rank1", "count")]
    for name, m in metrics.items():
        if "accuracy" in m:
            extra = "%9.3f" % m["rank1"] if "rank1" in m else "%9s" % "-"
            lines.append("%-12s %9.3f %9.3f %s %7d" % (name, m["accuracy"], m["macro_f1"], extra, m["count"]))
        else:
            lines.append("%-12s %9s %9s %9.3f %7d" % (name, "-", "-", m["mae"], m["count"]))
    return "\n".join(lines)
