"""``edgekit summary``: parameters per block of an MTDNN instance or a trained run."""

import click


def summary_rows(model):
    counts = model.parameter_counts()
    total = counts.pop("total")
    return [(block, count) for block, count in counts.items()], total


@click.command("summary")
@click.option("--task", type=click.Choice(["swim", "face"]), default="swim", show_default=True)
@click.option("--backbone", default="efficientnet_b3", show_default=True)
@click.option("--size", default=None, help="Frame size HxW [swim 100x100, face 198x198].")
@click.option("--clip-length", default=15, show_default=True)
@click.option("--head-size", type=click.Choice(["seed", "tiny"]), default="seed", show_default=True)
@click.option("--run", "run_dir", default=None, type=click.Path(), help="Summarise a trained run instead.")
def summary_command(task, backbone, size, clip_length, head_size, run_dir):
    """Print the parameters of each block (backbone, spatial, temporal, each head) and the total."""
    from quantize.config import face_config, swim_config
    from quantize.model import build_mtdnn
    from quantize.train import parse_size

    if run_dir:
        from quantize.runs import read_run

        config = read_run(run_dir).config
        config.weights = None
    elif task == "swim":
        config = swim_config(backbone, parse_size(size) if size else (100, 100), clip_length, head_size=head_size)
    else:
        config = face_config(backbone, parse_size(size) if size else (198, 198), head_size=head_size)
    model = build_mtdnn(config)
    rows, total = summary_rows(model)
    click.echo("MTDNN %s, backbone %s, input %dx%dx%dx3, feature map %s"
               % (config.name, config.backbone, config.clip_length, config.height, config.width,
                  "x".join(str(d) for d in model.feature_shape)))
    for block, count in rows:
        click.echo("  %-18s %12s  %5.1f %%" % (block, format(count, ","), 100.0 * count / total))
    click.echo("  %-18s %12s  (%.2f M)" % ("total", format(total, ","), total / 1e6))
