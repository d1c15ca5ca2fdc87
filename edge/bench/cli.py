"""``edgekit bench`` (with ``bench compare``) and ``edgekit devices list|check``.

Device side (no TensorFlow): a board with ``pip install 'edgekit[device,bench]'`` runs
``edgekit bench --device local`` on itself. The harness modules are imported when a command runs,
so ``--help`` imports nothing but click.
"""

import datetime
import json
import os
import sys

import click

from edge.errors import EdgekitError


def _camera(value):
    try:
        width, height = (int(v) for v in value.lower().split("x"))
    except ValueError:
        raise EdgekitError("--camera %r: use WIDTHxHEIGHT, e.g. 640x480" % value)
    if width < 16 or height < 16:
        raise EdgekitError("--camera %s: width and height must be >= 16" % value)
    return height, width


class _BenchGroup(click.Group):
    """``edgekit bench [OPTIONS]`` runs the benchmark; ``edgekit bench compare A B`` compares."""

    def format_usage(self, ctx, formatter):
        formatter.write_usage(ctx.command_path, "--device NAME [--model DIR|FILE.tflite ...] "
                                                "[OPTIONS] | compare A B")


@click.group("bench", cls=_BenchGroup, invoke_without_command=True)
@click.option("--device", "device_names", multiple=True, metavar="NAME",
              help="Target from devices.toml (cpu, jetson, coral, ...), or 'local' (this "
                   "machine; needs no devices.toml); repeat for several.")
@click.option("--model", "models", multiple=True, type=click.Path(),
              help="Model directory of 'edgekit quantize', a folder of them, or any .tflite "
                   "file (timed alone: no accuracy); repeatable [default: ./quickstart/models].")
@click.option("--data", "data_dir", type=click.Path(),
              help="Clip folder to measure accuracy on [default: the test split of the run in "
                   "each artifact's report.json].")
@click.option("--devices", "devices_file", type=click.Path(),
              help="devices.toml to read [default: $EDGEKIT_DEVICES, ./devices.toml, the "
                   "repository's].")
@click.option("--fps", type=float, default=30.0, show_default=True,
              help="Camera rate of the paced run.")
@click.option("--pace-seconds", type=float, default=5.0, show_default=True,
              help="Length of the camera-paced run.")
@click.option("--runs", type=int, default=50, show_default=True,
              help="At least this many timed runs per model ...")
@click.option("--min-seconds", type=float, default=1.0, show_default=True,
              help="... and at least this many seconds (like benchmark_model).")
@click.option("--warmup-seconds", type=float, default=0.5, show_default=True)
@click.option("--stride", type=int, default=None,
              help="Decision stride of the streaming figures [default: the manifest's].")
@click.option("--threads", type=int, default=None, help="Override the device's threads.")
@click.option("--camera", default="640x480", show_default=True,
              help="Camera frame size WxH fed to the streaming runner.")
@click.option("--max-clips", type=int, default=None, help="Evaluate at most this many clips.")
@click.option("--out", type=click.Path(file_okay=False),
              help="Output folder [default: bench-DEVICE-YYYYmmdd-HHMMSS].")
@click.option("--profile", is_flag=True,
              help="Profile the frame model and the head: op counts, MACs per op type, the "
                   "heaviest nodes, delegate partitions, GMAC/s (results.json, results.md, "
                   "profile.png).")
@click.option("--plot-task", default=None, metavar="TASK",
              help="Plot only this task's score [default: one row per task].")
@click.option("--json", "as_json", is_flag=True,
              help="Print results.json to stdout (progress stays on stderr).")
@click.pass_context
def bench_command(ctx, device_names, models, data_dir, devices_file, fps, pace_seconds, runs,
                  min_seconds, warmup_seconds, stride, threads, camera, max_clips, profile,
                  plot_task, out, as_json):
    """Measure size, latency, streaming cost, accuracy and op placement per target x artifact.

    A plain .tflite file gets latency, size, op placement and memory (no manifest, so no
    accuracy). Writes results.json, results.csv, results.md and pareto.png (with matplotlib)
    into --out.
    """
    if ctx.invoked_subcommand is not None:
        return
    from edge.bench.harness import Progress, run_bench
    from edge.bench.report import markdown_table, write_all

    if not device_names:
        raise EdgekitError("--device NAME is required (see 'edgekit devices list')")
    if not models:
        default = os.path.join("quickstart", "models")
        if not os.path.isdir(default):
            raise EdgekitError("no --model given and ./%s does not exist; pass --model DIR "
                               "(an 'edgekit quantize' output)" % default)
        models = (default,)
    if plot_task:  # refuse before minutes of benchmarking, not after
        from edge.bench.harness import discover
        tasks = sorted({t.name for a in discover(models) if a.manifest for t in a.manifest.tasks})
        if plot_task not in tasks:
            raise EdgekitError("--plot-task %s: no artifact has that task (tasks: %s)"
                               % (plot_task, ", ".join(tasks) or "none: plain .tflite files"))
    progress = Progress()
    document = run_bench(device_names, models, data_dir=data_dir, devices_file=devices_file,
                         threads=threads, progress=progress, command=["edgekit"] + sys.argv[1:],
                         runs=runs, min_seconds=min_seconds, warmup_seconds=warmup_seconds,
                         fps=fps, pace_seconds=pace_seconds, stride=stride,
                         camera=_camera(camera), max_clips=max_clips, profile=profile)
    if out is None:
        out = "bench-%s-%s" % ("+".join(device_names),
                               datetime.datetime.now().strftime("%Y%m%d-%H%M%S"))
    paths = write_all(out, document, progress, plot_task)
    if as_json:
        click.echo(json.dumps(document, indent=2))
    else:
        from edge.bench.profile import profile_markdown

        click.echo(markdown_table(document) + profile_markdown(document))
    progress("written: %s" % ", ".join(paths[k] for k in ("json", "csv", "md", "png",
                                                                "profile_png")
                                       if k in paths))


@bench_command.command("compare")
@click.argument("a", type=click.Path())
@click.argument("b", type=click.Path())
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False), metavar="PNG",
              help="Also draw the comparison: paired bars per metric (B against A), with the "
                   "plotted numbers in compare.json beside it.")
def compare_command(a, b, plot_path):
    """Two benchmark runs (results.json or --out folders) side by side, with ratios B/A."""
    from edge.bench.compare import compare_plot, compare_table
    from edge.bench.report import load_results

    run_a, run_b = load_results(a), load_results(b)
    click.echo("A = %s\nB = %s\n" % (a, b))
    click.echo(compare_table(run_a, run_b), nl=False)
    if plot_path:
        if compare_plot(run_a, run_b, plot_path):
            click.echo("written: %s" % plot_path)
        else:
            click.echo("no plot: matplotlib is not installed (pip install 'edgekit[plot]')")


@click.group("devices")
def devices_group():
    """The benchmark targets of devices.toml: list them, check they are usable."""


_devices_option = click.option("--devices", "devices_file", type=click.Path(),
                               help="devices.toml to read [default: $EDGEKIT_DEVICES, "
                                    "./devices.toml, the repository's].")


@devices_group.command("list")
@_devices_option
def devices_list(devices_file):
    """Every target with how it is reached, threads, backend and power sampler."""
    from edge.bench.harness import load_targets
    from edge.devices import default_devices_path

    path = devices_file or default_devices_path()
    devices = load_targets(devices_file)
    click.echo("# %s" % (path if os.path.isfile(path) else "no devices file (%s)" % path))
    for device in devices.values():
        click.echo(device.summary())


@devices_group.command("check")
@click.argument("name", required=False)
@_devices_option
def devices_check(name, devices_file):
    """Reachability, Python, numpy/OpenCV, TFLite runtime and backends on a target (or all)."""
    from edge.bench.harness import load_targets
    from edge.bench.remote import check_device
    from edge.devices import get_device

    devices = load_targets(devices_file, [name] if name else ())
    chosen = [get_device(devices, name, devices_file)] if name else list(devices.values())
    failed = []
    for device in chosen:
        ok, report = check_device(device)
        if ok:
            runtime = report.get("runtime") or {}
            backend = report.get("backend") or {}
            rows = report.get("backends", [])
            click.echo("%s: ok: python %s (%s), numpy %s, opencv %s, %s %s, backend %s; "
                       "available backends: %s; unavailable: %s" % (
                           device.name, report.get("python"), report.get("machine"),
                           report.get("numpy"), report.get("opencv"), runtime.get("package"),
                           runtime.get("version"), backend.get("describe"),
                           ", ".join(b["key"] for b in rows if b.get("available")) or "none",
                           ", ".join(b["key"] for b in rows if not b.get("available")) or
                           "none"))
            for row in rows:
                if not row.get("available"):
                    click.echo("  %s: %s" % (row["key"], row.get("reason")))
        else:
            failed.append(device.name)
            click.echo("%s: FAILED: %s" % (device.name, "; ".join(report.get("problems", []))))
    if failed:
        raise EdgekitError("%d of %d device(s) failed the check: %s"
                           % (len(failed), len(chosen), ", ".join(failed)))
