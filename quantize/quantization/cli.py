"""``edgekit quantize``: the click command over :func:`quantize.quantization.pipeline.quantize_run`."""

import click

from quantize.quantization.methods import METHODS


@click.command("quantize")
@click.option("--run", "run_dir", required=True, type=click.Path(), help="Run directory from 'edgekit train'.")
@click.option("--data", "data_dir", default=None, type=click.Path(),
              help="Data folder [the run's own; its stored train split calibrates, test scores].")
@click.option("--method", type=click.Choice(METHODS), required=True,
              help="fp32/fp16/dynamic (float references), ptq (calibrated int8), qat, prune-qat.")
@click.option("--sparsity", type=float, default=None, help="Target sparsity for prune-qat [0.5].")
@click.option("--epochs", type=int, default=None, help="Fine-tuning epochs [qat 1, prune-qat 4].")
@click.option("--calibration", type=int, default=200, show_default=True,
              help="Representative frames: all frames of >= 16 whole training clips covering every class.")
@click.option("--target", type=click.Choice(["cpu", "coral"]), default="cpu", show_default=True,
              help="coral: also an Edge TPU report (and compile if edgetpu_compiler is on PATH).")
@click.option("--out", required=True, type=click.Path(), help="Output model directory.")
@click.option("--resume", is_flag=True, help="Continue an interrupted qat/prune-qat fine-tuning.")
@click.option("--quiet", is_flag=True, help="Only print the final table.")
def quantize_command(run_dir, data_dir, method, sparsity, epochs, calibration, target, out, resume, quiet):
    """Emit frame/head/clip TFLite models, manifest.json and report.json for a trained run."""
    from quantize.quantization.pipeline import quantize_run

    report = quantize_run(run_dir, out, method, data_dir=data_dir, sparsity=sparsity, epochs=epochs,
                          calibration=calibration, target=target, resume=resume, verbose=0 if quiet else 1)
    click.echo(report["table"])
    click.echo("wrote %s" % out)
