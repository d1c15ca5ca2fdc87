"""``quantize_run``: one method, from a run directory to a finished model directory.

Order of work: validate every argument before anything slow (a bad --sparsity must not cost a
fine-tuning), load the run and its stored splits, produce the Keras models to export (float,
QAT-fine-tuned, or pruned + prune-preserving-QAT), split them for streaming
(:mod:`quantize.streaming`: the frame model with the LSTM's input projections, the window head;
``clip.tflite`` stays the clip model), convert frame/head/clip, gate them, score
float Keras / fake-quant Keras / TFLite with the one eval function, then write manifest and
report and move the directory into place.

Where int8 accuracy went, measured on a trained mbconv_micro run (100x100, T=15, 48 test clips;
float 0.958 action / 1.0 identity; QAT had given TFLite 0.50 / 0.94):

* tfmot starts every fake-quant range at [-6, 6] and moves it by an EMA of decay 0.999, so a
  one-epoch fine-tuning ended with ranges near [-6, 6]: SE and spatial-attention tensors of
  +-0.05 were fake-quantized to zeros (SE reduce conv SNR -5.8 dB), and the weights adapted to
  that graph. QAT now starts from calibrated ranges (:func:`qat.calibrate_ranges`).
* the QAT-trained head with its fake-quant nodes scored 0.94, its float copy (what the int8 head
  is calibrated from, as its LSTM only converts from a float graph) 0.42. The head now stays
  float and frozen during QAT, so what is calibrated is what was evaluated.
* the frame output and the head input were compared by dtype only when scoring, so int8
  features went into the head unrequantized (the device runner's ring requantizes them, and
  report.json's ``tflite`` figures come from that runner: ``edge.bench.evalset.score_model_dir``).
* the head was calibrated on the first few training clips (not all classes) from the Keras
  frame model; it is now calibrated on the int8 frame model's features of clips spread over
  every action x identity stratum (:func:`calibration_clips`).
* the converter gave the input of each standalone BatchNormalization (the spatial block's BN
  after the CBAM multiply) the range of that input times the BN's multiplier, 17x too wide:
  7 int8 levels. Those BNs are now 1x1 depthwise convs before calibration
  (:mod:`quantize.quantization.batchnorm`); the int8 head's largest action probability error
  went from 0.23 to 0.08 on the quickstart run.
* in QAT's clip.tflite, 60 ops read biases recorded at ~1/15 of the scale the kernel uses, so
  clip.tflite and frame+head disagreed on identity by up to 0.7; the biases are re-quantized
  (:mod:`quantize.quantization.bias_scale`) and the int8 gate rejects any left.
"""

import os
import shutil
import time

import numpy as np

from edge.errors import EdgekitError
from quantize import streaming
from quantize.quantization import artifacts
from quantize.quantization import convert as conv
from quantize.quantization.methods import INTEGER_METHODS, METHODS

SMALL_CALIBRATION = 100
# Fine-tuning epochs without --epochs. prune-qat needs more: its sparsity ramps over two thirds
# of the pruning steps and the network must recover at the target. Measured on the quickstart
# run (int8 action): prune-qat 0.938 at 2 epochs, 0.958 (the float model's) at 4.
DEFAULT_EPOCHS = {"qat": 1, "prune-qat": 4}


def check_arguments(method, sparsity, epochs, calibration, target):
    if method not in METHODS:
        raise EdgekitError("unknown --method %r; choose one of %s" % (method, ", ".join(METHODS)))
    if method == "prune-qat":
        from quantize.quantization.prune import check_sparsity
        sparsity = check_sparsity(0.5 if sparsity is None else sparsity)
    elif sparsity is not None:
        raise EdgekitError("--sparsity only applies to --method prune-qat (got --method %s)" % method)
    if epochs is not None and int(epochs) < 1:
        raise EdgekitError("--epochs must be >= 1, got %s" % epochs)
    if int(calibration) < 1:
        raise EdgekitError("--calibration must be >= 1 frames, got %s" % calibration)
    if target not in ("cpu", "coral"):
        raise EdgekitError("unknown --target %r; choose cpu or coral" % target)
    if target == "coral" and method not in INTEGER_METHODS:
        raise EdgekitError("--target coral needs a full-integer model; use --method ptq, qat or "
                           "prune-qat (not %s)" % method)
    return sparsity


def _load(run_dir, data_dir):
    from quantize.datasets import load_task_data
    from quantize.runs import load_run_model

    model, info = load_run_model(run_dir)
    data_dir = data_dir or info.data_dir
    if not data_dir:
        raise EdgekitError("run %s does not record its data folder; pass --data" % run_dir)
    data = load_task_data(info.config, data_dir, info.clip_stride)
    same = os.path.abspath(data_dir) == os.path.abspath(info.data_dir or "")
    if same and "train" in info.splits:
        train = data.select(info.splits["train"])
        val = data.select(info.splits.get("val", []))
        test = data.select(info.splits.get("test", [])) if info.splits.get("test") else train
    else:  # another folder: calibrate, fine-tune and score on all of it (said in the report)
        train, val, test = data, None, data
    if len(train) == 0:
        raise EdgekitError("no calibration samples: the training split of %s is empty; give "
                           "--data a folder with clips of the run's classes" % data_dir)
    return model, info, data_dir, train, val, test


def calibration_clips(data, count, seed=0):
    """Indices of ``count`` clips of ``data`` spread over its strata (action x identity), so the
    int8 ranges see every class: round-robin over the strata in a seeded order."""
    count = max(1, min(int(count), len(data)))
    rng = np.random.default_rng(seed)
    groups = {}
    for index, stratum in enumerate(np.asarray(data.strata).tolist()):
        groups.setdefault(str(stratum), []).append(index)
    queues = [list(rng.permutation(members)) for _, members in sorted(groups.items())]
    chosen = []
    while len(chosen) < count:
        for queue in queues:
            if queue and len(chosen) < count:
                chosen.append(int(queue.pop()))
    return np.array(sorted(chosen), dtype=np.int64)


def _predict(keras_model, x, batch_size=8):
    from quantize.train import predict
    return predict(keras_model, x, batch_size)


def _fine_tuned(method, model, info, train, val, epochs, sparsity, work_dir, resume, verbose,
                range_clips):
    """(qat models, float MTDNN holding the fine-tuned weights, extra report entries)."""
    from quantize.model import build_mtdnn
    from quantize.quantization import finetune, prune, qat

    extra = {}
    config = info.config
    source = model
    if method == "prune-qat":
        state = finetune.PhaseState(work_dir, "prune", {"sparsity": sparsity, "epochs": epochs})
        batch = 4
        steps = int(np.ceil(len(train) / batch)) * epochs
        wrapped = prune.wrap_for_pruning(model.clip, sparsity, steps)
        if verbose:
            print("pruning to sparsity %.2f for %d epoch(s)" % (sparsity, epochs))
        history = finetune.fine_tune(wrapped, config, train, val, epochs, state, resume,
                                     batch_size=batch, callbacks=prune.callbacks(), verbose=verbose)
        template = build_mtdnn(config)
        prune.strip(wrapped, template.clip)
        source = template
        extra["prune_history"] = history
        import tensorflow_model_optimization as tfmot
        scheme = tfmot.experimental.combine.Default8BitPrunePreserveQuantizeScheme()
    else:
        scheme = None
    head_names = qat.head_layer_names(source)
    models = qat.apply_qat(source.clip, scheme, frozen_float=head_names)
    # Start from calibrated ranges, not tfmot's [-6, 6] (see qat.calibrate_ranges); a resumed
    # fine-tuning restores its trained ranges from the checkpoint over these.
    extra["calibrated_ranges"] = qat.calibrate_ranges(models.clip, range_clips)
    state = finetune.PhaseState(work_dir, "qat", {"method": method, "sparsity": sparsity,
                                                  "epochs": epochs})
    if verbose:
        print("quantization-aware fine-tuning for %d epoch(s)" % epochs)
    extra["qat_history"] = finetune.fine_tune(models.clip, config, train, val, epochs, state, resume,
                                              verbose=verbose, keep_best=True)
    extra["qat_kept_epoch"] = state.kept_epoch
    extra["qat_resumed_after_epoch"] = state.resumed_after
    extra["qat_optimizer_steps"] = state.optimizer_steps
    float_copy = build_mtdnn(config)
    qat.copy_to_float(models.clip, float_copy.clip)
    if method == "prune-qat":
        extra["sparsity_per_layer"] = prune.layer_sparsity(float_copy.clip)
        extra["sparsity_overall"] = round(prune.overall_sparsity(float_copy.clip), 4)
    from quantize.quantization.configs import qat_coverage
    extra["qat_coverage"] = qat_coverage(source.clip, head_names)
    return models, float_copy, extra


CALIBRATION_CLIPS = 16


def quantize_run(run_dir, out, method, data_dir=None, sparsity=None, epochs=None, calibration=200,
                 target="cpu", resume=False, verbose=1, seed=0, clip_model=True, layer_errors=True):
    """Write ``out`` for ``method``; returns the report dict.

    ``clip_model=False`` skips ``clip.tflite`` (the one-file model; the device runs frame+head)
    and ``layer_errors=False`` the per-layer error analysis: both cost more than the rest of a
    small run, tests that are not about them switch them off.
    """
    from edge.metrics import score

    started = time.time()
    sparsity = check_arguments(method, sparsity, epochs, calibration, target)
    epochs = int(epochs or DEFAULT_EPOCHS.get(method, 1))
    out = os.path.abspath(out)
    artifacts.check_out_dir(out)
    work_dir = out + ".partial"
    if not resume and os.path.isdir(work_dir):
        shutil.rmtree(work_dir)
    model, info, data_dir, train, val, test = _load(run_dir, data_dir)
    config = info.config
    warnings_list = []
    calib_clips, frames, calib_count = _calibration_set(train, config, calibration, seed,
                                                        warnings_list)
    report = {"run": os.path.abspath(run_dir), "data": os.path.abspath(data_dir), "method": method,
              "sparsity": sparsity, "target": target, "epochs": epochs if method in ("qat", "prune-qat") else 0,
              "calibration_frames": int(len(frames)), "calibration_clips": calib_count,
              "train_clips": len(train), "test_clips": len(test),
              "parameters": model.parameter_counts()}
    metrics = {"float_keras": score(config, _predict(model.clip, test.x), test.targets)}
    graphs = _graphs_to_convert(method, model, info, train, val, test, epochs, sparsity, work_dir,
                                resume, verbose, calib_clips, report, metrics)
    with artifacts.staging_dir(out) as stage:
        files, timings, repaired = _convert_all(stage, method, graphs, config, frames, calib_clips,
                                                clip_model, verbose)
        report["metrics"] = metrics
        report["artifacts"] = _describe_artifacts(stage, files, model, repaired)
        if method in INTEGER_METHODS and layer_errors:
            _layer_errors(graphs[0], config, frames, report, warnings_list)
        feature_shape = model.feature_shape
        versions = _write_manifest(stage, config, method, sparsity, feature_shape, files, target,
                                   report)
        _score_tflite(stage, config, files, test, metrics, timings)
        report["tool_versions"] = versions
        report["warnings"] = warnings_list
        report["timings"] = dict(timings, total=round(time.time() - started, 2))
        text = artifacts.write_reports(stage, report)
    if os.path.isdir(work_dir):
        shutil.rmtree(work_dir, ignore_errors=True)
    report["table"] = text
    return report


def _calibration_set(train, config, calibration, seed, warnings_list):
    """(clips, their frames as float32, clip count): the one calibration set of every artifact.

    All frames of whole training clips spread over every action x identity stratum (at least
    CALIBRATION_CLIPS clips, enough clips for --calibration frames). frame.tflite is calibrated
    on these frames, head.tflite on the int8 frame model's features of these clips and
    clip.tflite on these clips, so a tensor the converter calibrates (one QAT does not model,
    e.g. an SE conv's pre-swish output) gets the same range in frame.tflite and in clip.tflite:
    with frame and clip drawn apart, block1's SE reduce output had zero point -5 in one and -42
    in the other.
    """
    T, H, W = config.clip_length, config.height, config.width
    wanted = max(CALIBRATION_CLIPS, int(np.ceil(int(calibration) / T)))
    calib_index = calibration_clips(train, wanted, seed)
    calib_clips = train.x[calib_index]
    frames = calib_clips.reshape((-1, H, W, 3)).astype(np.float32)
    if len(frames) < SMALL_CALIBRATION:
        warnings_list.append("calibration uses %d frames from %d training clips; fewer than %d "
                             "frames gives noisy int8 ranges" % (len(frames), len(calib_index),
                                                                 SMALL_CALIBRATION))
    return calib_clips, frames, int(len(calib_index))


def _graphs_to_convert(method, model, info, train, val, test, epochs, sparsity, work_dir, resume,
                       verbose, calib_clips, report, metrics):
    """(frame, step, head, clip) Keras graphs the converter gets for ``method`` (step None
    without a temporal branch): fine-tuned for
    qat/prune-qat (recording the fake-quant metrics), standalone BNs rewritten for integers."""
    from edge.metrics import score
    from quantize.quantization import hybrid, qat

    config = info.config
    float_model, frame_backbone, clip_keras = model, model.frame, model.clip
    if method in ("qat", "prune-qat"):
        models, float_copy, extra = _fine_tuned(method, model, info, train, val, epochs, sparsity,
                                                work_dir, resume, verbose, calib_clips)
        report.update(extra)
        metrics["fake_quant_keras"] = score(config, _predict(models.clip, test.x), test.targets)
        float_model, frame_backbone = float_copy, models.frame
        report["head_quantization"] = (
            "%s; tfmot cannot model the int8 tensors inside the LSTM (gate pre-activations, cell "
            "state), so the head stays float and frozen while the frame is QAT-fine-tuned, and "
            "the step model is calibrated on the int8 frame model's outputs" % hybrid.DESCRIPTION)
    else:
        report["head_quantization"] = hybrid.DESCRIPTION if method == "ptq" else method
    # The camera's split (quantize.streaming): the frame model grows the per-frame part of the
    # temporal branch, the head keeps what needs the window. clip.tflite stays the clip model.
    frame_keras = streaming.frame_model(frame_backbone, float_model)
    step_keras = (streaming.step_model(float_model) if streaming.has_temporal(config)
                  else None)
    head_keras = streaming.head_model(float_model)
    if method in INTEGER_METHODS:
        # Every float graph the converter calibrates gets its standalone BNs as 1x1 depthwise
        # convs (see quantize.quantization.batchnorm); the QAT frame keeps its fake-quant ranges.
        # The head is not calibrated (quantize.quantization.hybrid: int8 weights, float
        # activations), so its BNs stay BNs.
        from quantize.quantization.batchnorm import rewrite

        if method == "ptq":
            frame_keras, clip_keras = rewrite(frame_keras), rewrite(clip_keras)
        else:
            clip_keras = qat.compose_clip(frame_backbone, rewrite(float_model.head), config)
    return frame_keras, step_keras, head_keras, clip_keras


def _convert_all(stage, method, graphs, config, frames, calib_clips, clip_model, verbose):
    """Convert frame, step, head (and clip) into ``stage``: ({role: file}, timings, repaired
    biases)."""
    from quantize.quantization import bias_scale, gate, hybrid, runner

    frame_keras, step_keras, head_keras, clip_keras = graphs
    T, H, W = config.clip_length, config.height, config.width
    integer = method in INTEGER_METHODS
    files = {"frame": "frame.tflite", "head": "head.tflite"}
    if step_keras is not None:
        files["step"] = "step.tflite"
    if clip_model:
        files["clip"] = "clip.tflite"
    timings, repaired = {}, {}  # repaired: int8 biases re-quantized at their kernel's scale

    def emit(role, keras_model, shape, input_name, samples, in_type, out_type, out_name):
        t0 = time.time()
        artifact = "%s.tflite" % role
        check = None
        if integer and role == "head":  # int8 weights, float activations, nothing calibrated
            if verbose:
                print("converting %s (int8 weights, float activations)" % artifact)
            blob, check = hybrid.convert(keras_model, shape, artifact), hybrid.check
        else:
            if verbose:
                print("converting %s (%s)" % (artifact, method))
            blob = conv.convert(keras_model, shape, input_name, method, samples,
                                in_type if integer else "float32",
                                out_type if integer else "float32", out_name, artifact=artifact)
            if integer:
                blob, repaired[role] = bias_scale.repair(blob)
                check = gate.check_int8
        path = artifacts.write_model(stage, files[role], blob)
        if check is not None:
            check(path, artifact)
        timings["convert_" + role] = round(time.time() - t0, 2)
        return path

    frame_path = emit("frame", frame_keras, (1, H, W, 3), "frame", frames, "uint8", "int8",
                      None)
    # The step model is calibrated on what it will be fed: the int8 frame model's outputs
    # (dequantized) of clips covering every class, through the float recurrence as the device
    # runs it (a window starting at every frame). The head needs no calibration.
    step_samples = None
    if integer and step_keras is not None:
        outputs = runner.frame_outputs(frame_path, calib_clips)
        step_samples, _ = streaming.recurrent_windows(
            step_keras, [clip[streaming.LSTM_INPUTS] for clip in outputs], T)
    if step_keras is not None:
        emit("step", step_keras, streaming.input_shapes(step_keras), None, step_samples, "int8",
             "int8", None)
    emit("head", head_keras, streaming.input_shapes(head_keras), None, None, None, None, None)
    if clip_model:
        emit("clip", clip_keras, (1, T, H, W, 3), "clip", calib_clips.astype(np.float32),
             "uint8", "float32", None)
    return files, timings, repaired


def _describe_artifacts(stage, files, model, repaired):
    """report.json's per-artifact sizes, parameters, op list and repaired-bias counts."""
    from quantize.quantization import gate

    # Parameters of the network itself (the QAT clones also count quantizer ranges), split as
    # the camera runs it.
    param_counts = {"frame": streaming.frame_model(model.frame, model).count_params(),
                    "head": streaming.head_model(model).count_params(),
                    "clip": model.clip.count_params()}
    if "step" in files:
        param_counts["step"] = streaming.step_model(model).count_params()
    described = {}
    for role, name in files.items():
        entry = artifacts.sizes(os.path.join(stage, name))
        entry["params"] = int(param_counts[role])
        entry["ops"] = sorted({op for op, _ in gate.op_list(os.path.join(stage, name))})
        if role in repaired:
            entry["biases_repaired"] = repaired[role]
        described[role] = entry
    return described


def _layer_errors(frame_keras, config, frames, report, warnings_list):
    from quantize.quantization.layer_error import frame_layer_errors, worst
    try:
        rows = frame_layer_errors(frame_keras, (1, config.height, config.width, 3), frames)
        report["layer_errors"] = rows
        report["layer_errors_worst"] = worst(rows)
    except Exception as exc:  # diagnostics must not sink the artifacts
        warnings_list.append("per-layer error analysis failed: %s" % str(exc).splitlines()[0])


def _write_manifest(stage, config, method, sparsity, feature_shape, files, target, report):
    """The manifest (with the Edge TPU variant for --target coral); returns the tool versions."""
    from quantize.backbones import get_backbone

    variant_files = {}
    if target == "coral":
        report["edgetpu"] = _edgetpu(stage, files)
        if report["edgetpu"].get("file"):
            variant_files["edgetpu"] = {"frame": report["edgetpu"]["file"]}
    versions = _versions()
    manifest = artifacts.build_manifest(
        stage, config, method, sparsity, feature_shape, files, versions,
        get_backbone(config.backbone).normalization, variant_files=variant_files,
        window=streaming.window_inputs(config))
    manifest.save(stage)
    return versions


def _score_tflite(stage, config, files, test, metrics, timings):
    """TFLite metrics, scored after the manifest exists: the device runtime runs the staged
    directory the way a camera and `edgekit bench` do (edge.bench.evalset.score_model_dir)."""
    from edge.bench.evalset import score_model_dir
    from edge.metrics import score
    from quantize.quantization import runner

    t0 = time.time()
    metrics["tflite"] = score_model_dir(stage, test.x, test.targets)
    if "clip" in files:
        metrics["tflite_clip"] = score(config, runner.run_clip(os.path.join(stage, files["clip"]),
                                                               test.x), test.targets)
    timings["score_tflite"] = round(time.time() - t0, 2)


def _edgetpu(stage, files):
    from edge.tflite_inspect import _plain_interpreter
    from quantize.quantization import edgetpu

    report = edgetpu.compatibility(_plain_interpreter(os.path.join(stage, files["frame"])))
    compiled, log = edgetpu.compile_for_edgetpu(os.path.join(stage, files["frame"]), stage)
    report["compile"] = log if compiled is None else "compiled: %s" % os.path.basename(compiled)
    if compiled:
        report["file"] = os.path.basename(compiled)
    return report


def _versions():
    import edge
    from quantize.tf_compat import tf, keras
    import tensorflow_model_optimization as tfmot

    return {"edgekit": edge.__version__, "tensorflow": tf.__version__, "tf_keras": keras.__version__,
            "tfmot": tfmot.__version__}
