"""Ablation: spatial-only vs temporal-only vs fused MTDNN on the synthetic swimmer set.

The seed claims that fusing the spatial block (time-averaged feature maps) with the temporal block
(LSTM + self-attention over per-frame features) beats either alone. This trains the three variants
with identical data, split, seed and budget and prints held-out accuracy per task.

    python benchmarks/bench_ablation.py [--data DIR] [--epochs 40] [--backbone mbconv_micro]
"""

import argparse
import os
import sys
import tempfile
import time


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", help="swimmer clip folder [synthesise one]")
    parser.add_argument("--clips-per-pair", type=int, default=20)
    parser.add_argument("--backbone", default="mbconv_micro")
    parser.add_argument("--size", default="100x100")
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--patience", type=int, default=None,
                        help="early-stopping patience [= epochs: every variant gets the same budget]")
    parser.add_argument("--branches", nargs="+", default=["spatial", "temporal", "fused"],
                        choices=["spatial", "temporal", "fused"])
    parser.add_argument("--work", help="folder for the runs [a temporary one]")
    args = parser.parse_args(argv)

    from quantize.train import parse_size, train

    size = parse_size(args.size)
    work = args.work or tempfile.mkdtemp(prefix="edgekit-ablation-")
    data = args.data
    if not data:
        from quantize.data.synth import synthesize_swimmers

        data = os.path.join(work, "data")
        synthesize_swimmers(data, clips_per_pair=args.clips_per_pair, frames=15, size=size, seed=args.seed,
                            overwrite=True)
    rows = []
    for branches in args.branches:
        started = time.time()
        metrics = train(data, os.path.join(work, branches), backbone=args.backbone, size=size,
                        epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.lr,
                        patience=args.patience or args.epochs, seed=args.seed, branches=branches, verbose=0)
        tasks = metrics["tasks"]
        rows.append((branches, tasks["action"]["accuracy"], tasks["action"]["macro_f1"],
                     tasks["identity"]["accuracy"], tasks["identity"]["rank1"],
                     metrics["parameters"]["total"], metrics["training"]["epochs_run"], time.time() - started))
        print("%s done in %.0f s" % (branches, time.time() - started), file=sys.stderr)
    print("command: python benchmarks/bench_ablation.py %s" % " ".join(argv if argv is not None else sys.argv[1:]))
    print("data: %s, backbone %s, %s, seed %d, held-out test split" % (data, args.backbone, args.size, args.seed))
    print("%-9s %10s %10s %10s %10s %11s %7s %8s" % ("branches", "action", "action F1", "identity",
                                                    "re-ID r1", "parameters", "epochs", "seconds"))
    for row in rows:
        print("%-9s %10.3f %10.3f %10.3f %10.3f %11d %7d %8.0f" % row)


if __name__ == "__main__":
    main()
