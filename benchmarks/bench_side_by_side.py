"""Notebooks side by side or one after another: the choice behind the notebooks' ``threads = 1`` default, the
runner's ``--jobs`` and ``make test``'s two nbval processes, measured side by side in one run.

The same work both ways: N training runs (cnn-small, Fashion-MNIST-LT IF 100, the notebooks' ``cpu-quick``
preset, one epoch, no evaluation; different seeds) on this machine's cores.

- **one after another**: one process, the runs in turn, torch using every core (``--threads`` = the cores);
- **side by side**: as many processes as cores, each with one torch thread, the runs shared out.

Each variant runs in alternating order within each round (A B, B A, ...); the figure is training images per second
of wall time for all the runs (process start and imports included, as a notebook pays them), median over rounds,
and the ratio side-by-side / one-after-another.

Run: ``make bench`` or ``.venv/bin/python benchmarks/bench_side_by_side.py [--rounds 3] [--runs 8]``.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WORKER = """
import json, sys, torch
from pathlib import Path
from semscale_lib.training import make_config, train
threads, out, seeds = int(sys.argv[1]), Path(sys.argv[2]), [int(s) for s in sys.argv[3].split(",")]
torch.set_num_threads(threads)
images = 0
for seed in seeds:
    config = make_config("cpu-quick", dataset="fashion-mnist-lt", epochs=1, device="cpu", model="cnn-small",
                         eval_every=0, seed=seed)
    folder = train(config, out_dir=out / f"seed{seed}", progress=False)
    images += sum(json.loads((folder / "config.json").read_text())["train_counts"])
print(images)
"""


def _launch(threads: int, folder: Path, seeds: list[int]) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    return subprocess.Popen([sys.executable, "-c", WORKER, str(threads), str(folder), ",".join(map(str, seeds))],
                            env=env, stdout=subprocess.PIPE, text=True)


def one_round(side_by_side: bool, runs: int, cores: int, folder: Path) -> float:
    """Training images per second of wall time for ``runs`` runs."""
    seeds = list(range(runs))
    started = time.perf_counter()
    if side_by_side:
        processes = [_launch(1, folder / f"p{i}", seeds[i::cores]) for i in range(min(cores, runs))]
    else:
        processes = [_launch(cores, folder / "p0", seeds)]
    images = 0
    for process in processes:
        out, _ = process.communicate()
        if process.returncode:
            raise SystemExit(f"a training process failed (exit {process.returncode})")
        images += int(out.strip().splitlines()[-1])
    return images / (time.perf_counter() - started)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--runs", type=int, default=8, help="training runs per variant (a multiple of the cores)")
    parser.add_argument("--cores", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args(argv)
    names = {False: f"one after another, {args.cores} threads", True: f"side by side, {args.cores} × 1 thread"}
    rates = {False: [], True: []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for variant in ((False, True) if r % 2 == 0 else (True, False)):
                rates[variant].append(one_round(variant, args.runs, args.cores, Path(tmp) / f"{r}-{variant}"))
                print(f"round {r + 1}: {names[variant]}: {rates[variant][-1]:.0f} images/s", flush=True)
    before, after = statistics.median(rates[False]), statistics.median(rates[True])
    print(f"\n{args.runs} runs of 1 epoch, Fashion-MNIST-LT, cnn-small, {args.cores} cores, median of {args.rounds} "
          "rounds:")
    for variant in (False, True):
        print(f"  {names[variant]:40s} {statistics.median(rates[variant]):8.0f} images/s")
    print(f"  side by side / one after another: {after / before:.2f}×")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
