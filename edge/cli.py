"""The ``edgekit`` command line.

The group knows its subcommands by name and import path only: a subcommand's module is imported
when that subcommand runs (or when its help is asked for), so ``edgekit --help`` and the device-side
commands never load TensorFlow. User errors (:class:`edge.errors.EdgekitError`) become one line on
stderr and exit status 1.
"""

import importlib
import sys

import click

from edge import __version__
from edge.errors import EdgekitError

# name -> "module:attribute" of a click command. Host-side commands live in quantize/ (TensorFlow);
# device-side ones in edge/.
COMMANDS = {
    "data": "quantize.data.cli:data",
    "train": "quantize.train:train_command",
    "eval": "quantize.evaluate:eval_command",
    "summary": "quantize.summary:summary_command",
    "quickstart": "quantize.quickstart:quickstart_command",
    "quantize": "quantize.quantization.cli:quantize_command",
    "export": "quantize.onnx_export:export_command",
    "run": "edge.run_cli:run_command",
    "enroll": "edge.run_cli:enroll_command",
    "bench": "edge.bench.cli:bench_command",
    "devices": "edge.bench.cli:devices_group",
    "serve": "edge.serve.cli:serve_command",
}

# name -> the one line ``edgekit --help`` shows beside it. Kept here, not read from the command,
# because reading a command's own help means importing its module (and TensorFlow); keep each
# line in step with the command's docstring when either changes.
HELP = {
    "data": "Synthesise swimmer clips or faces; inspect a data folder.",
    "train": "Train the multi-task network on a data folder.",
    "eval": "Score a trained run: accuracy, macro-F1, rank-1, age MAE.",
    "summary": "Parameters per block of a network and the total.",
    "quickstart": "The whole pipeline offline on synthetic data.",
    "quantize": "Emit TFLite models, manifest.json and report.json for a run.",
    "export": "The frame model as ONNX, for ONNX Runtime and TensorRT.",
    "run": "Stream a video, camera or URL through a model (no TensorFlow).",
    "enroll": "Build an open-set re-ID gallery from labelled clips.",
    "bench": "Measure size, latency and accuracy of models on targets.",
    "devices": "List and check the benchmark targets of devices.toml.",
    "serve": "The on-camera daemon: cameras in, events out.",
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use."""

    def __init__(self, *args, lazy_commands=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.lazy_commands = dict(lazy_commands or {})

    def list_commands(self, ctx):
        return sorted(set(super().list_commands(ctx)) | set(self.lazy_commands))

    def get_command(self, ctx, name):
        if name in self.lazy_commands:
            module_name, attr = self.lazy_commands[name].split(":")
            try:
                module = importlib.import_module(module_name)
            except ImportError as exc:
                missing = getattr(exc, "name", None) or str(exc)
                raise click.ClickException(
                    "'edgekit %s' needs %s, which is not installed here; install the host side "
                    "with: pip install 'edgekit[host]'" % (name, missing))
            return getattr(module, attr)
        return super().get_command(ctx, name)

    def format_commands(self, ctx, formatter):
        # A command's own short help would import its module (and TensorFlow): use HELP instead.
        rows = [(name, HELP.get(name, "")) for name in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except EdgekitError as exc:
            click.echo("edgekit: error: %s" % exc, err=True)
            sys.exit(1)
        except KeyboardInterrupt:
            click.echo("edgekit: interrupted", err=True)
            sys.exit(130)


@click.group(cls=LazyGroup, lazy_commands=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="edgekit")
def main():
    """Train, quantize, benchmark and deploy temporal multi-task video networks on edge devices.

    Run 'edgekit COMMAND --help' for a command's options.
    """


if __name__ == "__main__":  # pragma: no cover
    main()
