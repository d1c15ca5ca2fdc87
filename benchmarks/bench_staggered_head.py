"""What a head with one recurrent matmul per frame would cost: a measured design study for #13.

Not a shipped path: edgekit's head (``quantize.streaming.head_model``) runs the LSTM recurrence
over the window, 14 FULLY_CONNECTED steps sharing one recurrent kernel W_h, and XNNPACK packs
a copy of W_h for every step, so a window reads 6.26 MB of packed weights for 2.85 MB of distinct
ones (``bench_streaming.py`` line (d)). The alternative measured here keeps the recurrence on
the device instead:

- a *step* model advances the LSTM states of all T windows that contain the current frame
  (window k started at the frame whose ring slot is k) by one step, as one
  [T x u] x [u x 4u] FULLY_CONNECTED: one packed copy of W_h, read once per frame;
- the device keeps each window's hidden states; when a window is complete, the *rest* of the
  head (attention over its T hidden states, the spatial branch on the mean map, fusion, tasks)
  runs once.

The work is the same (T-1 recurrent matmuls per window), but batched, and the weights are
packed once. The script builds both halves from the same float network as ``bench_streaming.py
--keep DIR`` (``build_source``, same seed) in a TensorFlow subprocess and converts them the
quantize path's way, calibrated on that directory's int8 frame model outputs run through the
float recurrence. Then, with no TensorFlow loaded, it prints:

- the invoke times after each frame invoke, medians of five interleaved blocks: the shipped
  head H against step + rest, and the same invoked back to back;
- how far the int8 step + rest decisions are from the shipped int8 head's on the same frame
  outputs (``--frames`` frames of random pixels, states requantized between invokes in float
  here, where the device would use a 256-entry table).

    python benchmarks/bench_streaming.py --keep /tmp/b3s   # once: the B3 directory
    python benchmarks/bench_staggered_head.py --model /tmp/b3s

Measured (AMD EPYC, 1 MiB L2 per core, 32 MiB L3, threads=1, B3 swim, T=15, u=256): see the
README, "The streaming split, before and after (issue #13)".
"""

import argparse
import os
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

STEP, REST = "step.tflite", "rest.tflite"


def lstm_step(x, hidden, cell, matmul, sigmoid, tanh):
    """One Keras LSTM step (gates i, f, c, o) of every row of ``hidden``/``cell`` with input
    projections ``x`` (W_x x_t + b, shared by all rows); numpy or TensorFlow alike."""
    u = hidden.shape[-1]
    z = x + matmul(hidden)
    sig = sigmoid(z)
    i, f, g, o = sig[..., :u], sig[..., u:2 * u], tanh(z[..., 2 * u:3 * u]), sig[..., 3 * u:]
    cell = f * cell + i * g
    return o * tanh(cell), cell


def np_sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def staggered(projections, features, kernel, length):
    """Float staggered recurrence over a frame sequence: per frame, the step samples
    ``(x, hidden, cell)`` (the inputs of that frame's step) and, per finished window, the rest
    samples ``(spatial mean, hidden states oldest first)``."""
    u = kernel.shape[0]
    hidden = np.zeros((length, u), np.float32)
    cell = np.zeros((length, u), np.float32)
    history = np.zeros((length, length, u), np.float32)  # [window row, step, u]
    steps, windows = [], []
    for t, x in enumerate(projections):
        row = t % length  # the window starting at frame t
        hidden[row] = 0.0
        cell[row] = 0.0
        steps.append((x[None], hidden[None].copy(), cell[None].copy()))
        hidden, cell = lstm_step(x[None], hidden, cell, lambda h: h @ kernel, np_sigmoid,
                                 np.tanh)
        for k in range(length):
            history[k, (t - k) % length] = hidden[k]
        if t >= length - 1:
            done = (t + 1) % length  # started length - 1 frames ago
            windows.append((features[t - length + 1:t + 1].mean(axis=0), history[done].copy()))
    return steps, windows


def frame_outputs(frame_path, frames):
    from quantize.quantization.runner import Model, dequantize

    frame = Model(frame_path)
    out = {}
    for image in frames:
        for name, value in frame(image[None].astype(np.uint8)).items():
            out.setdefault(name, []).append(dequantize(value, frame.outputs[name])[0])
    return {name: np.stack(values) for name, values in out.items()}


def build(model_dir, out_dir, sequence=45):
    """TensorFlow subprocess: step.tflite and rest.tflite beside nothing else, in ``out_dir``."""
    from bench_streaming import build_source
    from quantize.model import fusion_and_tasks, spatial_branch, temporal_window
    from quantize.quantization import convert as conv
    from quantize.quantization.batchnorm import rewrite
    from quantize.tf_compat import keras, tf

    config, model, frames = build_source()
    widths, T = config.widths, config.clip_length
    lstm = model.clip.get_layer("temporal_lstm")
    u, kernel = lstm.units, lstm.get_weights()[1]
    outputs = frame_outputs(os.path.join(model_dir, "frame.tflite"), frames)
    order = [k % len(frames) for k in range(sequence)]
    steps, windows = staggered(outputs["lstm_inputs"][order], outputs["features"][order],
                               kernel, T)

    x = keras.Input((4 * u,), name="lstm_input")
    h = keras.Input((T, u), name="hidden")
    c = keras.Input((T, u), name="cell")
    recurrent = tf.constant(kernel)
    h2, c2 = keras.layers.Lambda(lambda t: lstm_step(
        t[0], tf.reshape(t[1], (-1, u)), tf.reshape(t[2], (-1, u)),
        lambda v: tf.matmul(v, recurrent), tf.sigmoid, tf.tanh))([x, h, c])
    # inputs in name order: the converter's calibration feeds a sample's arrays in that order
    step = keras.Model([c, h, x], {"hidden_out": tf.reshape(h2, (1, T, u)),
                                   "cell_out": tf.reshape(c2, (1, T, u))})
    mean = keras.Input(tuple(model.feature_shape), name="spatial_mean")
    hidden = keras.Input((T, u), name="hidden_states")
    rest = keras.Model([hidden, mean], fusion_and_tasks(
        [spatial_branch(mean, widths), temporal_window(hidden, widths)], config))
    for layer in rest.layers:
        if layer.weights:
            layer.set_weights(model.clip.get_layer(layer.name).get_weights())
    rest = rewrite(rest)
    # float: the staggered recurrence + rest equals the shipped head on the same windows
    from quantize import streaming
    head = streaming.head_model(model)
    worst = 0.0
    for end, (mean_map, states) in enumerate(windows, start=T - 1):
        stacked = outputs["lstm_inputs"][order][end - T + 1:end + 1]
        want = head([mean_map[None], stacked[None]], training=False)
        got = rest([states[None], mean_map[None]], training=False)
        worst = max(worst, max(float(np.max(np.abs(np.asarray(want[k]) - np.asarray(got[k]))))
                               for k in want))
    print("float: step + rest vs the shipped head over %d windows, max |difference| %.2e"
          % (len(windows), worst))
    os.makedirs(out_dir, exist_ok=True)
    blob = conv.convert(step, [("cell", (1, T, u)), ("hidden", (1, T, u)),
                               ("lstm_input", (1, 4 * u))], None, "ptq",
                        [[s[2][0], s[1][0], s[0][0]] for s in steps], "int8", "int8",
                        artifact=STEP)
    with open(os.path.join(out_dir, STEP), "wb") as handle:
        handle.write(blob)
    blob = conv.convert(rest, [("hidden_states", (1, T, u)),
                               ("spatial_mean", (1,) + tuple(model.feature_shape))], None,
                        "ptq", [[hs, m] for m, hs in windows], "int8", "float32",
                        artifact=REST)
    with open(os.path.join(out_dir, REST), "wb") as handle:
        handle.write(blob)
    # int8, each way, against the float head on the same (in-sample) windows
    shipped = Net(os.path.join(model_dir, "head.tflite"))
    staggered_int8 = Int8Staggered(out_dir, T)
    worst = {"shipped head": {}, "step + rest": {}}
    for t, frame_index in enumerate(order):
        got = staggered_int8.push(outputs["lstm_inputs"][frame_index][None],
                                  outputs["features"][frame_index])
        if got is None:
            continue
        mean_map, _ = windows[t - T + 1]
        stacked = outputs["lstm_inputs"][order][t - T + 1:t + 1]
        want = head([mean_map[None], stacked[None]], training=False)
        shipped.set("spatial_mean", mean_map[None])
        shipped.set("lstm_inputs", stacked[None])
        shipped.it.invoke()
        for way, result in (("shipped head", {k: shipped.get(k)[0] for k in want}),
                            ("step + rest", got)):
            for k in want:
                diff = float(np.max(np.abs(np.asarray(want[k])[0] - result[k])))
                worst[way][k] = max(worst[way].get(k, 0.0), diff)
    for way, diffs in worst.items():
        print("int8 %s vs float, %d windows, max |difference|: %s" % (way, len(windows), ", ".join(
            "%s %.4f" % item for item in sorted(diffs.items()))))


class Net(object):
    """One interpreter with named inputs/outputs as float (quantized on the way in)."""

    def __init__(self, path):
        from edge.interpreter import make_interpreter
        from edge.tflite_inspect import signature_indices

        self.it = make_interpreter(path, threads=1)
        sig = signature_indices(self.it)
        details = {d["index"]: d for d in self.it.get_input_details()
                   + self.it.get_output_details()}
        self.inputs = {n: details[i] for n, i in sig["inputs"].items()}
        self.outputs = {n: details[i] for n, i in sig["outputs"].items()}

    def set(self, name, value):
        d = self.inputs[name]
        scale, zero = d["quantization"]
        if scale:
            info = np.iinfo(d["dtype"])
            value = np.clip(np.round(value / scale) + zero, info.min, info.max)
        self.it.set_tensor(d["index"], np.asarray(value, d["dtype"]).reshape(d["shape"]))

    def get(self, name):
        d = self.outputs[name]
        value = self.it.get_tensor(d["index"]).astype(np.float32)
        scale, zero = d["quantization"]
        return (value - zero) * scale if scale else value


class Int8Staggered(object):
    """The device side of the design, in float numpy around the two int8 models: per frame one
    step invoke for all T windows, per finished window one rest invoke."""

    def __init__(self, out_dir, length):
        self.step, self.rest = Net(os.path.join(out_dir, STEP)), Net(os.path.join(out_dir, REST))
        u = self.step.inputs["hidden"]["shape"][-1]
        self.length = length
        self.hidden = np.zeros((length, u), np.float32)
        self.cell = np.zeros((length, u), np.float32)
        self.history = np.zeros((length, length, u), np.float32)
        self.features = []
        self.t = 0

    def push(self, lstm_inputs, features):
        """One frame's (dequantized) outputs -> {task: outputs} of the window it ends, or None."""
        T, t, step = self.length, self.t, self.step
        self.t += 1
        self.features = (self.features + [features])[-T:]
        self.hidden[t % T] = 0.0  # the window starting here
        self.cell[t % T] = 0.0
        step.set("lstm_input", lstm_inputs)
        step.set("hidden", self.hidden[None])
        step.set("cell", self.cell[None])
        step.it.invoke()
        self.hidden, self.cell = step.get("hidden_out")[0], step.get("cell_out")[0]
        for k in range(T):
            self.history[k, (t - k) % T] = self.hidden[k]
        if t < T - 1:
            return None
        self.rest.set("spatial_mean", np.mean(self.features, axis=0)[None])
        self.rest.set("hidden_states", self.history[(t + 1) % T][None])
        self.rest.it.invoke()
        return {name: self.rest.get(name)[0] for name in self.rest.outputs}


def timings(model_dir, out_dir, blocks=5, calls=150):
    frame, head = Net(os.path.join(model_dir, "frame.tflite")), Net(
        os.path.join(model_dir, "head.tflite"))
    step, rest = Net(os.path.join(out_dir, STEP)), Net(os.path.join(out_dir, REST))
    names = ("head", "step", "rest")
    after = {k: [] for k in names}
    loop = {k: [] for k in names}
    nets = {"head": head, "step": step, "rest": rest}
    for _ in range(blocks):
        samples = {k: [] for k in names}
        for _ in range(calls):
            frame.it.invoke()
            for key in ("head",):
                t0 = time.process_time()
                head.it.invoke()
                samples[key].append(time.process_time() - t0)
            frame.it.invoke()
            for key in ("step", "rest"):
                t0 = time.process_time()
                nets[key].it.invoke()
                samples[key].append(time.process_time() - t0)
        for key in names:
            after[key].append(np.median(samples[key]) * 1e3)
        for key in names:
            ts = []
            for _ in range(calls):
                t0 = time.process_time()
                nets[key].it.invoke()
                ts.append(time.process_time() - t0)
            loop[key].append(np.median(ts) * 1e3)
    return ({k: float(np.median(v)) for k, v in after.items()},
            {k: float(np.median(v)) for k, v in loop.items()})


def agreement(model_dir, out_dir, n_frames, seed=1):
    """Max |difference| of the task outputs, shipped head vs step + rest, over the windows of
    ``n_frames`` random frames (the same int8 frame outputs feed both)."""
    from edge.manifest import Manifest
    from edge.runner import StreamingRunner
    from edge.tflite_inspect import signature_indices

    runner = StreamingRunner(model_dir, threads=1, stride=1)
    manifest = Manifest.load(model_dir)
    # the frame model's outputs as the shipped runner computed them, read after each frame
    frame_it = runner.frame_interpreter
    out_index = signature_indices(frame_it)["outputs"]
    out_detail = {d["index"]: d for d in frame_it.get_output_details()}

    def frame_output(name):
        d = out_detail[out_index[name]]
        scale, zero = d["quantization"]
        return (frame_it.get_tensor(d["index"]).astype(np.float32) - zero) * scale

    staggered_int8 = Int8Staggered(out_dir, manifest.clip_length)
    rng = np.random.default_rng(seed)
    worst = {}
    height, width = manifest.input.height, manifest.input.width
    for t in range(n_frames):
        image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        shipped = runner.process(image, t)
        got = staggered_int8.push(frame_output("lstm_inputs"), frame_output("features")[0])
        if got is None:
            continue
        for name, task in shipped[0].tasks.items():
            diff = float(np.abs(got[name] - task.values).max())
            worst[name] = max(worst.get(name, 0.0), diff)
    return worst


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True,
                        help="a bench_streaming.py --keep directory (the defaults' B3)")
    parser.add_argument("--out", help="where step/rest.tflite go (default: MODEL/staggered)")
    parser.add_argument("--frames", type=int, default=60, help="frames for the agreement check")
    parser.add_argument("--build", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    out = args.out or os.path.join(args.model, "staggered")
    if args.build:
        build(args.model, out)
        return
    if not all(os.path.exists(os.path.join(out, f)) for f in (STEP, REST)):
        t0 = time.time()
        env = dict(os.environ, TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="3",
                   CUDA_VISIBLE_DEVICES="")
        proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--build", "--model",
                               args.model, "--out", out], env=env, cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if proc.returncode != 0:
            sys.exit("building step/rest failed:\n" + proc.stderr[-3000:])
        print(proc.stdout.strip())
        print("built %s and %s in %.0f s: %s" % (STEP, REST, time.time() - t0, out))
    after, loop = timings(args.model, out)
    print("command: %s" % " ".join(["python"] + sys.argv))
    print("CPU-time medians of 5 interleaved blocks of 150 calls, threads=1:")
    print("  after each frame invoke: shipped head H %.3f ms; step %.3f + rest %.3f = %.3f ms "
          "(%.0f %% of H; target H <= 0.45 ms)" % (after["head"], after["step"], after["rest"],
                                                   after["step"] + after["rest"],
                                                   100 * (after["step"] + after["rest"])
                                                   / after["head"]))
    print("  back to back: head %.3f ms; step %.3f + rest %.3f = %.3f ms"
          % (loop["head"], loop["step"], loop["rest"], loop["step"] + loop["rest"]))
    worst = agreement(args.model, out, args.frames)
    print("  int8 step + rest vs the shipped int8 head, %d frames, max |difference| per task: %s"
          % (args.frames, ", ".join("%s %.4f" % item for item in sorted(worst.items()))))


if __name__ == "__main__":
    main()
