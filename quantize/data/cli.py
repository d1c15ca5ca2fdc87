"""``edgekit data``: generate synthetic data sets and inspect data folders.

No TensorFlow here: these commands only touch files, so they stay fast. Errors are raised as
EdgekitError and printed as one line by the top-level group.
"""

import os
import re
from collections import Counter

import click

from edge.errors import EdgekitError
from edge.video import read_clip
from edge.data.clips import LABELS_FILE, scan_clip_folder
from edge.data.utkface import GENDERS, RACES, parse_utkface_name, scan_utkface


def _parse_size(text):
    """'100x100' -> (100, 100) (height x width)."""
    match = re.match(r"^\s*(\d+)\s*[xX]\s*(\d+)\s*$", str(text))
    if not match:
        raise EdgekitError("--size must look like HEIGHTxWIDTH, e.g. 100x100 (got %r)" % text)
    return int(match.group(1)), int(match.group(2))


@click.group()
def data():
    """Generate synthetic data sets and inspect data folders."""


@data.command()
@click.option("--kind", type=click.Choice(["swim", "face"]), required=True,
              help="swim: labelled swimmer clips; face: UTKFace-named images.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Output folder (created if missing).")
@click.option("--clips-per-pair", default=6, show_default=True, type=click.IntRange(min=1),
              help="swim: clips for every (action, swimmer) pair.")
@click.option("--frames", default=15, show_default=True, type=click.IntRange(min=2),
              help="swim: frames per clip.")
@click.option("--size", default=None, help="Frame size HEIGHTxWIDTH [swim 100x100, face 64x64].")
@click.option("--identities", default=4, show_default=True, type=click.IntRange(min=1),
              help="swim: number of swimmers.")
@click.option("--count", default=64, show_default=True, type=click.IntRange(min=1),
              help="face: number of images.")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--format", "fmt", default="avi", show_default=True, type=click.Choice(["avi", "mp4"]),
              help="swim: video container.")
@click.option("--overwrite", is_flag=True,
              help="Replace data files already in --out even if edgekit did not generate them.")
def synth(kind, out_dir, clips_per_pair, frames, size, identities, count, seed, fmt, overwrite):
    """Write a synthetic swimmer-clip or face data set to --out."""
    from quantize.data import synth as generator  # numpy + OpenCV only

    if kind == "swim":
        summary = generator.synthesize_swimmers(
            out_dir, clips_per_pair=clips_per_pair, frames=frames,
            size=_parse_size(size or "100x100"), seed=seed, fmt=fmt, identities=identities,
            overwrite=overwrite)
        click.echo("wrote %d clips (%d frames, %dx%d, .%s) to %s" % (
            summary["clips"], summary["frames"], summary["size"][0], summary["size"][1],
            summary["format"], out_dir))
        click.echo("actions: %s" % ", ".join(summary["actions"]))
        click.echo("identities: %s" % ", ".join(summary["identities"]))
    else:
        summary = generator.synthesize_faces(out_dir, count=count, size=_parse_size(size or "64x64"),
                                             seed=seed, overwrite=overwrite)
        click.echo("wrote %d face images (%dx%d) to %s" % (
            summary["images"], summary["size"][0], summary["size"][1], out_dir))
        click.echo("ages %d..%d; genders %s; races %s" % (
            summary["age_min"], summary["age_max"], _fmt_counts(summary["genders"]),
            _fmt_counts(summary["races"])))


def _face_name_problem(name):
    try:
        parse_utkface_name(name)
    except EdgekitError as exc:
        return str(exc)
    return "unknown problem"  # pragma: no cover - scan_utkface only lists names that fail


def _fmt_counts(counts):
    return ", ".join("%s %d" % (name, n) for name, n in counts.items())


@data.command()
@click.argument("folder", type=click.Path())
@click.option("--frames", "check_frames", type=click.IntRange(min=1), default=None,
              help="swim: also decode every clip and report those with fewer than this many frames "
                   "or that cannot be decoded (slower).")
def info(folder, check_frames):
    """Count samples per class in FOLDER (swimmer clips or UTKFace images) and list skipped files."""
    if not os.path.isdir(folder):
        raise EdgekitError("data folder %s does not exist" % folder)
    if os.path.isfile(os.path.join(folder, LABELS_FILE)):
        index = scan_clip_folder(folder)
        labels = index.labels
        click.echo("swimmer clips in %s: %d usable, %d skipped" % (folder, len(index.items), len(index.skipped)))
        actions = Counter(item.action for item in index.items)
        identities = Counter(item.identity for item in index.items)
        click.echo("actions: %s" % ", ".join("%s %d" % (n, actions[i]) for i, n in enumerate(labels.actions)))
        click.echo("identities: %s" % ", ".join("%s %d" % (n, identities[i]) for i, n in enumerate(labels.identities)))
        skipped = list(index.skipped)
        if check_frames:
            for item in index.items:
                try:
                    read_clip(item.path, check_frames, size=(8, 8))
                except EdgekitError as exc:
                    skipped.append((item.path, str(exc)))
            click.echo("decoded %d clips with %d frames: %d unusable" % (
                len(index.items), check_frames, len(skipped) - len(index.skipped)))
    else:
        index = scan_utkface(folder)
        click.echo("UTKFace images in %s: %d usable, %d malformed names" % (folder, len(index.items), len(index.malformed)))
        ages = [item.age for item in index.items]
        genders = Counter(item.gender for item in index.items)
        races = Counter(item.race for item in index.items)
        click.echo("age: min %d, mean %.1f, max %d" % (min(ages), sum(ages) / len(ages), max(ages)))
        click.echo("gender: %s" % ", ".join("%s %d" % (n, genders[i]) for i, n in enumerate(GENDERS)))
        click.echo("race: %s" % ", ".join("%s %d" % (n, races[i]) for i, n in enumerate(RACES)))
        skipped = [(os.path.join(folder, name), _face_name_problem(name)) for name in index.malformed]
    for path, reason in skipped:
        click.echo("skipped %s: %s" % (os.path.basename(path), reason))
