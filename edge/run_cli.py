"""``edgekit run`` and ``edgekit enroll``: the device-side commands (no TensorFlow).

``run`` streams a file, camera or URL through :class:`edge.runner.StreamingRunner` and writes one
JSON line per region per window (``--jsonl``) and optionally an annotated video (``--write``).
Both follow the model's tasks (:meth:`edge.results.TaskOutput.to_dict`): a label and its scores
per classification task, a value per regression task, the vector of an embedding; the console
ends with a summary per task (windows per label, range and mean of each value).
Both outputs are written under a temporary name and renamed into place when the stream ends (or
is interrupted), so a reader never sees a half-written file under the final name.

``enroll`` builds an open-set re-ID gallery from clips named ``<action>_<identity>_<n>.avi``
(read by :func:`edge.clipnames.scan_clip_names`, the same parser and suffixes as training, so a
folder that trains also enrolls).
"""

import json
import os

import click
import cv2

from edge.atomic import Pending
from edge.clipnames import PATTERN, scan_clip_names
from edge.errors import EdgekitError
from edge.gallery import DEFAULT_THRESHOLD, Gallery
from edge.preprocess import check_roi, parse_roi
from edge.results import describe
from edge.ringbuffer import GAP_POLICIES

FOURCC = {".avi": "MJPG", ".mp4": "mp4v"}


def _runner(model, device, threads, stride, rois, gallery, threshold, gap_policy, max_skip,
            delegate, source_order):
    from edge.runner import StreamingRunner
    return StreamingRunner(model, device=device, threads=threads, stride=stride, rois=rois,
                           gallery=gallery, unknown_threshold=threshold, gap_policy=gap_policy,
                           max_skip=max_skip, delegate=delegate, source_order=source_order)


def _pending(path):
    """An :class:`edge.atomic.Pending` for ``path``. Unlike Pending, a missing output directory
    is refused rather than created: a typo in --jsonl/--write must not scatter folders."""
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise EdgekitError("output directory %s does not exist; create it first" % directory)
    return Pending(path)


class _TaskSummary(object):
    """What the windows said, per task, for the console: how many windows gave each label
    (classification, and gallery matches), and the range and mean of each value (regression)."""

    def __init__(self, tasks):
        self.tasks = [t for t in tasks if t.kind != "embedding"]
        self.labels = {t.name: {} for t in self.tasks}
        self.values = {t.name: [0, 0.0, None, None] for t in self.tasks if t.kind == "regression"}
        self.matches = {}

    def add(self, result):
        for name, counts in self.labels.items():
            task = result.tasks[name]
            if task.kind == "classification":
                counts[task.label] = counts.get(task.label, 0) + 1
        for name, acc in self.values.items():
            value = result.tasks[name].value
            acc[0] += 1
            acc[1] += value
            acc[2] = value if acc[2] is None else min(acc[2], value)
            acc[3] = value if acc[3] is None else max(acc[3], value)
        if result.match is not None:
            self.matches[result.match.name] = self.matches.get(result.match.name, 0) + 1

    def lines(self):
        out = []
        for task in self.tasks:
            if task.kind == "regression":
                n, total, low, high = self.values[task.name]
                if n:
                    out.append("%s: mean %.2f, min %.2f, max %.2f over %d windows"
                               % (task.name, total / n, low, high, n))
                continue
            counts = sorted(self.labels[task.name].items(), key=lambda kv: (-kv[1], kv[0]))
            if counts:
                out.append("%s: %s" % (task.name, ", ".join("%s %d" % kv for kv in counts)))
        if self.matches:
            out.append("gallery: %s" % ", ".join(
                "%s %d" % kv for kv in sorted(self.matches.items(), key=lambda kv: -kv[1])))
        return out


class _Annotator(object):
    """Draws each region's box and latest labels onto the frame and writes it to a video."""

    def __init__(self, path, fps, size):
        suffix = os.path.splitext(path)[1].lower()
        if suffix not in FOURCC:
            raise EdgekitError("--write %s: use a .mp4 or .avi file name" % path)
        self.pending = _pending(path)
        self.writer = cv2.VideoWriter(self.pending.tmp, cv2.VideoWriter_fourcc(*FOURCC[suffix]),
                                      fps or 15.0, (size[1], size[0]))
        if not self.writer.isOpened():
            self.pending.discard()
            raise EdgekitError("OpenCV cannot encode %s here; try a .avi file name" % path)
        self.latest = {}

    def update(self, result):
        self.latest[result.roi_index] = result

    def write(self, frame, rois):
        for index, roi in enumerate(rois):
            x, y, w, h = roi if roi is not None else (0, 0, frame.shape[1], frame.shape[0])
            cv2.rectangle(frame, (x, y), (x + w - 1, y + h - 1), (0, 255, 0), 1)
            result = self.latest.get(index)
            if result is None:
                continue
            words = [t.label if t.kind == "classification" else "%s %s" % (t.name, describe(t))
                     for t in result.tasks.values() if t.kind != "embedding"]
            if result.match is not None:
                words.append("id:%s" % result.match.name)
            cv2.putText(frame, " ".join(words), (x + 2, y + 12), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                        (0, 255, 255), 1, cv2.LINE_AA)
        self.writer.write(frame)  # drawing in place: the source reuses its buffer anyway

    def close(self, commit):
        self.writer.release()
        if commit:
            self.pending.commit()
        else:
            self.pending.discard()


@click.command("run")
@click.option("--model", "model", required=True, type=click.Path(),
              help="Model directory written by 'edgekit quantize' (manifest.json + models).")
@click.option("--source", required=True, help="Video file, camera index (0) or rtsp/http URL.")
@click.option("--roi", "rois", multiple=True, metavar="X,Y,W,H",
              help="Region of interest in source pixels; repeat for several (e.g. pool lanes).")
@click.option("--stride", type=int, default=None,
              help="Run the clip head every S frames (default: the manifest's).")
@click.option("--jsonl", "jsonl", type=click.Path(), default=None,
              help="Write one JSON line per region per window here.")
@click.option("--write", "write", type=click.Path(), default=None,
              help="Write the video with boxes and labels drawn on it (.mp4 or .avi).")
@click.option("--device", default="cpu", show_default=True,
              help="cpu, gpu, edgetpu, edgetpu:usb, edgetpu:pci, edgetpu:N, onnxruntime[:fp32], "
                   "tensorrt[:int8] (the ONNX ones need edgekit export).")
@click.option("--delegate", default=None, help="Path of an external delegate library.")
@click.option("--threads", type=int, default=None, help="CPU threads for the interpreter.")
@click.option("--gallery", type=click.Path(), default=None,
              help="Gallery .npz from 'edgekit enroll' for open-set re-identification.")
@click.option("--unknown-threshold", type=float, default=None,
              help="Cosine similarity below which a match is 'unknown' (default: the gallery's).")
@click.option("--gap-policy", type=click.Choice(GAP_POLICIES), default="reset", show_default=True,
              help="After skipped frames: reset the buffer or hold it.")
@click.option("--max-skip", type=int, default=0, show_default=True,
              help="Skipped frames tolerated before the gap policy applies.")
@click.option("--max-frames", type=int, default=None, help="Stop after this many frames.")
@click.option("--decode-scale", type=click.Choice(["1", "2", "4", "8"]), default="1",
              show_default=True,
              help="Decode at 1/N of the source's width and height (MJPEG: most of the decode "
                   "skipped). --roi and the JSON boxes stay in source pixels.")
def run_command(model, source, rois, stride, jsonl, write, device, delegate, threads, gallery,
                unknown_threshold, gap_policy, max_skip, max_frames, decode_scale):
    """Stream a video file, camera or URL through the model; one JSON line per window."""
    from edge.reduced_decode import reduce_box
    from edge.sources import FrameSource

    scale = int(decode_scale)
    boxes = [parse_roi(text) for text in rois]
    decoded = [reduce_box(box, scale) for box in boxes]  # the regions in the decoded frames
    runner = _runner(model, device, threads, stride, decoded, gallery, unknown_threshold,
                     gap_policy, max_skip, delegate, "BGR")
    source_obj = FrameSource(source, decode_scale=scale)
    at = " (decoded at 1/%d)" % scale if scale > 1 else ""
    if source_obj.width and source_obj.height:
        for i, box in enumerate(decoded):  # fail before any output file is created
            check_roi(box, (source_obj.height, source_obj.width),
                      where="--roi #%d%s" % (i + 1, at))
    pending = _pending(jsonl) if jsonl else None
    handle = open(pending.tmp, "w", encoding="utf-8") if pending else None
    annotator = None
    windows = 0
    summary = _TaskSummary(runner.manifest.tasks)
    try:
        for index, timestamp, frame in source_obj:
            if max_frames is not None and source_obj.stats.frames_read > max_frames:
                break
            results = runner.process(frame, index, timestamp)
            for result in results:
                windows += 1
                summary.add(result)
                if boxes:
                    result.roi = boxes[result.roi_index]  # as the user gave it
                if handle is not None:
                    handle.write(json.dumps(result.to_dict()) + "\n")
            if write:
                if annotator is None:
                    annotator = _Annotator(write, source_obj.fps, frame.shape)
                for result in results:
                    annotator.update(result)
                annotator.write(frame, runner.rois)
    finally:
        source_obj.close()
        if handle is not None:
            handle.close()
            # keep what was written even when interrupted: every line is a finished window
            pending.commit()
        if annotator is not None:
            annotator.close(commit=True)
    stats = source_obj.stats
    if stats.frames_read == 0:
        raise EdgekitError("no frame could be read from %s (%s)" % (source, stats.reason))
    click.echo("%d frames read, %d skipped, %d missing; %d windows over %d region(s); %s"
               % (stats.frames_read, stats.frames_skipped, stats.frames_missing, windows,
                  len(runner.rois), stats.reason))
    for line in summary.lines():
        click.echo("  " + line)


@click.command("enroll")
@click.option("--model", "model", required=True, type=click.Path(),
              help="Model directory written by 'edgekit quantize'.")
@click.option("--clips", required=True, type=click.Path(),
              help="Folder of clips named %s (as for training)." % PATTERN)
@click.option("--out", required=True, type=click.Path(), help="Gallery file to write (.npz).")
@click.option("--threshold", type=float, default=DEFAULT_THRESHOLD, show_default=True,
              help="Cosine similarity below which a match is 'unknown' (stored in the gallery).")
@click.option("--device", default="cpu", show_default=True)
@click.option("--threads", type=int, default=None)
def enroll_command(model, clips, out, threshold, device, threads):
    """Build an open-set re-ID gallery of identity embeddings from labelled clips."""
    from edge.video import read_clip

    if not os.path.isdir(clips):
        raise EdgekitError("clip folder %s does not exist" % clips)
    if not str(out).endswith(".npz"):
        raise EdgekitError("--out %s must end in .npz" % out)
    # the training parser: a training folder (with its labels.json) enrolls as it is
    named, rejected = scan_clip_names(clips, ignore=("labels.json",))
    skipped = ["%s (%s)" % (os.path.basename(path), reason) for path, reason in rejected]
    if not named:
        raise EdgekitError("no usable clips in %s (%d files skipped%s); expected files named %s"
                           % (clips, len(skipped), ", e.g. " + rejected[0][1] if rejected
                              else "", PATTERN))
    runner = _runner(model, device, threads, 1, None, None, None, "reset", 0, None, "RGB")
    if runner.embedding_task is None:
        raise EdgekitError("model %s has no embedding task to enroll with" % model)
    samples = []
    for path, clip_name in named:
        name, identity = os.path.basename(path), clip_name.identity
        try:
            frames = read_clip(path, runner.clip_length, stride=1, size=None)
        except EdgekitError as exc:  # one bad clip must not sink the gallery; report it
            skipped.append("%s (%s)" % (name, exc))
            continue
        result = runner.run_clip(frames, source_order="RGB")
        samples.append((identity, result.embedding))
    if not samples:
        raise EdgekitError("no clip in %s could be read: %s" % (clips, "; ".join(skipped)))
    gallery = Gallery.from_samples(samples, threshold=threshold,
                                   model=runner.manifest.name + ":" + runner.manifest.backbone)
    gallery.save(out)
    click.echo("enrolled %d clips of %d identities into %s%s"
               % (len(samples), len(gallery.names), out,
                  "; skipped %d: %s" % (len(skipped), "; ".join(skipped)) if skipped else ""))
