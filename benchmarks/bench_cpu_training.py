"""CPU training speed of the notebooks' defaults, before and after, measured side by side in one run.

Before: the earlier default — ``resnet-tiny`` evaluated on the 10,000 test images after every epoch. After: the
CPU default now — ``cnn-small`` (a plain 3-layer CNN, the second model family) evaluated once, after the last
epoch (``eval_every=0``). Both train one epoch of Fashion-MNIST-LT (IF 100, 14,886 images, batch 128) through the
one trainer (``semscale_lib.training.train``), in alternating order within each round (A B, B A, ...); the
reported figure is training images per second of wall time (data loading, the epoch, evaluation and the run
folder's files included), median over rounds, and the ratio after/before.

Run: ``make bench`` or ``.venv/bin/python benchmarks/bench_cpu_training.py [--rounds 3] [--threads 2]``.
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch

from semscale_lib.training import make_config, train

VARIANTS = {
    "before: resnet-tiny, eval every epoch": dict(model="resnet-tiny", eval_every=1),
    "after: cnn-small, eval at the end": dict(model="cnn-small", eval_every=0),
}


def one_run(overrides: dict, folder: Path, epochs: int) -> float:
    """Training images per second of wall time for one run."""
    config = make_config("cpu-quick", dataset="fashion-mnist-lt", epochs=epochs, device="cpu", **overrides)
    started = time.perf_counter()
    out = train(config, out_dir=folder, progress=False)
    seconds = time.perf_counter() - started
    images = sum(json.loads((out / "config.json").read_text())["train_counts"])
    return epochs * images / seconds


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2, help="torch threads (the notebooks use 2)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    names = list(VARIANTS)
    rates = {name: [] for name in names}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for name in (names if r % 2 == 0 else names[::-1]):
                rates[name].append(one_run(VARIANTS[name], Path(tmp) / f"{r}-{names.index(name)}", args.epochs))
                print(f"round {r + 1}: {name}: {rates[name][-1]:.0f} images/s", flush=True)
    before, after = (statistics.median(rates[n]) for n in names)
    print(f"\nFashion-MNIST-LT, {args.epochs} epoch(s), {args.threads} threads, median of {args.rounds} rounds:")
    for name in names:
        print(f"  {name:40s} {statistics.median(rates[name]):8.0f} images/s")
    print(f"  after/before: {after / before:.2f}×")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
