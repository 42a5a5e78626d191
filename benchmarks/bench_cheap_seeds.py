"""What makes a seed cheap enough for the paired claims' power, measured side by side in one run on Double-MNIST-LT
(IF 100, 100 classes), the dataset whose paired claims need the most seeds. Three recipes, each seed trained once with
each:

- **late pool, lr 0.1, 32 epochs**: ``cnn-small`` as it was, pooling after its second layer (at lr 0.1, 24 epochs
  still left test top-1 short of where 32 reach);
- **early pool, lr 0.1, 32 epochs**: the preset's ``cnn-small``, pooling after its first layer (the same layers on a
  map a quarter the size), everything else unchanged — the pure speed lever;
- **the preset** (``cpu-quick``): early pool, SGD at lr 0.2, 16 epochs — the speed lever plus a shorter schedule.

Everything else is the preset's (cosine schedule, warm-up 1, batch 128, a tenth held out for validation), one CPU
thread, the same seeds. A lever must not change what the studies measure, so beside each ratio (training images per
second, wall time per run) the paired test top-1 difference is printed with its 95 % t interval and an equivalence
test at ±1 point (TOST, α = 0.05: the 90 % interval inside ±1): "equivalent" means the lever is shown neutral;
"not shown equivalent" means it may change accuracy, in the direction its interval says.

Run: ``make bench`` or ``.venv/bin/python benchmarks/bench_cheap_seeds.py [--seeds 3]`` (≈ 15 min on 2 cores).
"""
from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from scipy import stats

from semscale_lib import models
from semscale_lib.training import make_config, train

class LatePoolCNN(models.SmallCNN):
    """``cnn-small`` as it was: 2×2 max-pooling after the second layer (while the map is at least 4 pixels)."""

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        stride = 2 if min(x.shape[-2:]) >= 16 else 1
        x = F.relu(self.bn1(F.conv2d(x, self.conv1.weight, stride=stride, padding=1)))
        x = F.relu(self.bn2(self.conv2(x)))
        if min(x.shape[-2:]) >= 4:
            x = F.max_pool2d(x, 2)
        x = F.relu(self.bn3(self.conv3(x)))
        return F.adaptive_avg_pool2d(x, (1, self.blocks)).flatten(2).transpose(1, 2).flatten(1)


def _late_pool(num_classes, *, in_channels=3, normalized_classifier=False, input_size=None):
    blocks = 1 if input_size is None else max(1, int(input_size[1]) // max(1, int(input_size[0])))
    return LatePoolCNN(num_classes, in_channels, normalized_classifier=normalized_classifier, blocks=blocks)


LATE = "late pool, lr 0.1, 32 epochs"
EARLY = "early pool, lr 0.1, 32 epochs"
PRESET = "the preset: early pool, lr 0.2, 16 epochs"
RECIPES = {LATE: dict(model="cnn-small-late-pool", lr=0.1, epochs=32),
           EARLY: dict(model="cnn-small", lr=0.1, epochs=32),
           PRESET: dict(model="cnn-small", lr=0.2, epochs=16)}
#: Top-1 points within which a lever counts as neutral (the plateau rule's resolution, semscale_lib.studies.plateau).
EQUIVALENCE_POINTS = 1.0


def compare(by: pd.DataFrame, new: str, old: str, what: str) -> str:
    """One line: ``new`` against ``old`` (recipes), speed ratios and the paired top-1 difference (new − old) with
    its 95 % t interval and the ±:data:`EQUIVALENCE_POINTS` equivalence test."""
    speed = by["images_per_second"][new].median() / by["images_per_second"][old].median()
    wall = by["seconds"][old].median() / by["seconds"][new].median()
    diff = (by["top1"][new] - by["top1"][old]).to_numpy()
    n = len(diff)
    if n > 1:
        se = diff.std(ddof=1) / math.sqrt(n)
        low, high = diff.mean() + np.array([-1, 1]) * stats.t.ppf(0.975, n - 1) * se
        low90, high90 = diff.mean() + np.array([-1, 1]) * stats.t.ppf(0.95, n - 1) * se
        equivalent = -EQUIVALENCE_POINTS < low90 and high90 < EQUIVALENCE_POINTS
        ci = f"95 % CI [{low:+.2f}, {high:+.2f}]"
        test = ("equivalent" if equivalent else "not shown equivalent") + f" within ±{EQUIVALENCE_POINTS:g}"
    else:
        ci, test = "no CI from one seed", "equivalence not tested"
    return (f"{what}: {speed:.2f}× the training images per second, {wall:.2f}× fewer seconds per run; test top-1 "
            f"{diff.mean():+.2f} points ({ci}, {n} seeds; per seed {', '.join(f'{d:+.2f}' for d in diff)}): {test}")


def one_run(recipe: dict, seed: int, folder: Path) -> dict:
    config = make_config("cpu-quick", dataset="double-mnist-lt", imbalance_factor=100, device="cpu", seed=seed,
                         **recipe)
    started = time.perf_counter()
    out = train(config, out_dir=folder, progress=False, log=False)
    seconds = time.perf_counter() - started
    metrics = pd.read_csv(out / "metrics.csv")
    images = sum(__import__("json").loads((out / "config.json").read_text())["train_counts"]) * config.optim.epochs
    return {"top1": 100 * float(metrics["top1"].iloc[-1]), "seconds": seconds,
            "images_per_second": images / metrics["seconds"].sum()}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    models.MODELS["cnn-small-late-pool"] = _late_pool
    models.SIZE_AWARE.add("cnn-small-late-pool")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(args.seeds):
            order = list(RECIPES.items())
            for i, (name, recipe) in enumerate(order[seed % 3:] + order[:seed % 3]):   # rotated: drift spreads
                result = one_run(recipe, seed, Path(tmp) / f"{seed}-{i}")
                rows.append({"recipe": name, "seed": seed, **result})
                print(f"seed {seed}, {name}: test top-1 {result['top1']:.2f} %, {result['images_per_second']:.0f} "
                      f"images/s, {result['seconds']:.0f} s", flush=True)
    by = pd.DataFrame(rows).pivot(index="seed", columns="recipe")
    print(compare(by, EARLY, LATE, "speed lever (early pool, same schedule)"))
    print(compare(by, PRESET, EARLY, "shorter schedule (lr 0.2, 16 epochs)"))
    print(compare(by, PRESET, LATE, "cheap seeds, both together (the preset against the old recipe)"))


if __name__ == "__main__":
    main()
