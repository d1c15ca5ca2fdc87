"""Head files side by side: where their nodes run and what an invoke costs after the frame model.

For a model directory's frame model and one or more head files of the same network (e.g. the
int8 head an older ``edgekit quantize`` wrote and the int8-weight float head it writes now),
prints per head: its nodes, how many run on XNNPACK and in how many partitions, the ops left on
the built-in kernels; then the CPU-time median of one head invoke right after a frame invoke
(what a window costs on a camera, where the frame model's weights have just evicted the head's)
and of a second invoke at once (weights cached). The heads are timed interleaved, one frame
invoke before each, so a change in the shared machine's speed moves all of them alike. Inputs
are random, in each head's own dtype and quantization (the cost does not depend on the values).
Loaded as the runner loads a head (``edge.backends.litert.head_kernels``), 1 thread.

    python benchmarks/bench_head.py --model /tmp/b3h --head /tmp/b3/head.tflite --rounds 400

Measured: README, "The head with int8 weights and float activations".
"""

import argparse
import os
import statistics
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from edge import backends  # noqa: E402
from edge.backends.litert import head_kernels  # noqa: E402
from edge.bench import placement  # noqa: E402
from edge.manifest import Manifest  # noqa: E402


def random_inputs(interpreter, rng):
    """Fill every input of ``interpreter`` with random values of its dtype (real-scale floats)."""
    for detail in interpreter.get_input_details():
        dtype = np.dtype(detail["dtype"])
        if dtype.kind == "f":
            value = rng.normal(0.0, 1.0, detail["shape"]).astype(dtype)
        else:
            info = np.iinfo(dtype)
            value = rng.integers(info.min, info.max + 1, detail["shape"]).astype(dtype)
        interpreter.set_tensor(detail["index"], value)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="model directory (its frame and head)")
    parser.add_argument("--head", action="append", default=[],
                        help="another head file to compare (repeatable)")
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)

    manifest = Manifest.load(args.model)
    cpu = backends.create("cpu", kernels=head_kernels())
    frame = backends.create("cpu").load(
        os.path.join(args.model, manifest.model_file("frame").file), threads=args.threads)
    rng = np.random.default_rng(0)
    random_inputs(frame, rng)
    paths = [os.path.join(args.model, manifest.model_file("head").file)] + args.head
    heads = []
    for path in paths:
        interpreter = cpu.load(path, threads=args.threads)
        random_inputs(interpreter, rng)
        heads.append(interpreter)
    after = [[] for _ in paths]
    warm = [[] for _ in paths]
    clock = time.process_time
    for _ in range(args.rounds):
        for k, head in enumerate(heads):
            frame.invoke()
            t0 = clock()
            head.invoke()
            t1 = clock()
            head.invoke()
            t2 = clock()
            after[k].append(t1 - t0)
            warm[k].append(t2 - t1)
    print("command: %s" % " ".join(["python"] + sys.argv))
    print("frame model %s, %s kernels for the heads, threads=%d, %d rounds, CPU-time medians"
          % (os.path.join(args.model, manifest.model_file("frame").file), head_kernels(),
             args.threads, args.rounds))
    for path, head, a, w in zip(paths, heads, after, warm):
        where = placement.placement(placement.op_details(head))
        inputs = ", ".join(sorted({np.dtype(d["dtype"]).name for d in head.get_input_details()}))
        print("%s (%s inputs): %d nodes, %d on %s in %d partition(s), %d on the built-in "
              "kernels%s" % (path, inputs, where["nodes"], where["delegated"], where["delegate"],
                             where["partitions"], where["cpu"],
                             " (%s)" % ", ".join("%s x%d" % kv for kv in sorted(
                                 where["ops_cpu"].items())) if where["ops_cpu"] else ""))
        print("    invoke after the frame model %.3f ms, at once again %.3f ms"
              % (statistics.median(a) * 1e3, statistics.median(w) * 1e3))
    base = statistics.median(after[0])
    for path, a in zip(paths[1:], after[1:]):
        print("after the frame model, the directory's head vs %s: %.3f / %.3f ms = %.2f x"
              % (path, base * 1e3, statistics.median(a) * 1e3, base / statistics.median(a)))

if __name__ == "__main__":
    main()
