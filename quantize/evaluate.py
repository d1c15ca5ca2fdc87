"""``edgekit eval``: per-task metrics of a trained run on a data folder.

When the folder is the one the run was trained on, only its held-out test split is scored (the
split is stored in the run by file name), so the figure is never inflated by training clips; any
other folder is scored whole.
"""

import json
import os

import click

from edge.errors import EdgekitError


def evaluation_data(info, data_dir, split="auto"):
    """The samples to score: the stored test split of the training folder, or a whole other folder."""
    from quantize.datasets import load_task_data

    data = load_task_data(info.config, data_dir, info.clip_stride)
    same_folder = os.path.abspath(data_dir) == os.path.abspath(info.data_dir or "")
    if split == "auto":
        split = "test" if same_folder else "all"
    if split == "all":
        return data, "all"
    if not same_folder:
        raise EdgekitError("--split %s only applies to the folder the run was trained on (%s)"
                           % (split, info.data_dir))
    if split not in info.splits:
        raise EdgekitError("run has no %r split; choose one of %s or all" % (split, ", ".join(info.splits)))
    return data.select(info.splits[split]), split


def evaluate_run(run_dir, data_dir=None, split="auto", batch_size=16):
    """Load a run, score it on ``data_dir`` (default: its training folder) and return metrics."""
    from edge.metrics import score
    from quantize.runs import load_run_model
    from quantize.train import predict

    model, info = load_run_model(run_dir)
    data, used = evaluation_data(info, data_dir or info.data_dir, split)
    if len(data) == 0:
        raise EdgekitError("no samples to evaluate in %s (split %s)" % (data_dir, used))
    outputs = predict(model.clip, data.x, batch_size)
    return {"run": run_dir, "data": data_dir or info.data_dir, "split": used, "count": len(data),
            "tasks": score(info.config, outputs, data.targets)}


@click.command("eval")
@click.option("--run", "run_dir", required=True, type=click.Path(), help="Run directory from 'edgekit train'.")
@click.option("--data", "data_dir", default=None, type=click.Path(), help="Data folder [the run's own].")
@click.option("--split", type=click.Choice(["auto", "train", "val", "test", "all"]), default="auto", show_default=True,
              help="auto: the test split of the training folder, or all of another folder.")
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as JSON.")
def eval_command(run_dir, data_dir, split, as_json):
    """Score a trained run per task: accuracy, macro-F1, confusion, rank-1, age MAE."""
    from edge.metrics import format_table

    result = evaluate_run(run_dir, data_dir, split)
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    click.echo("%s on %s (%s split, %d samples)" % (run_dir, result["data"], result["split"], result["count"]))
    click.echo(format_table(result["tasks"]))
    for name, metrics in result["tasks"].items():
        if "confusion" in metrics:
            click.echo("\n%s confusion (rows: truth, columns: predicted; %s)" % (name, ", ".join(metrics["labels"])))
            for label, row in zip(metrics["labels"], metrics["confusion"]):
                click.echo("  %-14s %s" % (label, " ".join("%4d" % v for v in row)))
