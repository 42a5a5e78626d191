"""What makes a seed cheap enough for the paired claims' power: the notebooks' CPU recipe against the one it replaced,
measured side by side in one run on Double-MNIST-LT (IF 100, 100 classes), the dataset whose paired claims need the
most seeds.

- **before**: ``cnn-small`` pooling after its second layer, SGD at lr 0.1, 32 epochs (at lr 0.1, 24 epochs still
  left test top-1 short of where 32 reach);
- **after** (the ``cpu-quick`` preset): ``cnn-small`` pooling after its first layer (the same layers on a map a
  quarter the size), SGD at lr 0.2, 16 epochs.

Everything else is the preset's (cosine schedule, warm-up 1, batch 128, a tenth held out for validation), one CPU
thread, the same seeds. The lever must not change what the studies measure, so beside the ratios of training images
per second and of wall time per run, each seed's test top-1 is printed for both recipes with the paired difference
and its 95 % t interval: a lever that shifted accuracy would show there.

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

BEFORE = "cnn-small, pooled after layer 2"


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


RECIPES = {BEFORE: dict(model="cnn-small-late-pool", lr=0.1, epochs=32),
           "cnn-small (the preset), lr 0.2, 16 epochs": dict(model="cnn-small", lr=0.2, epochs=16)}


def one_run(recipe: dict, seed: int, folder: Path) -> dict:
    config = make_config("cpu-quick", dataset="double-mnist-lt", imbalance_factor=100, device="cpu", seed=seed,
                         **recipe)
    started = time.perf_counter()
    out = train(config, out_dir=folder, progress=False, log=False)
    seconds = time.perf_counter() - started
    metrics = pd.read_csv(out / "metrics.csv")
    images = sum(__import__("json").loads((out / "config.json").read_text())["train_counts"]) * config.epochs
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
            for i, (name, recipe) in enumerate(sorted(RECIPES.items(), key=lambda kv: (kv[0] == BEFORE) == seed % 2)):
                result = one_run(recipe, seed, Path(tmp) / f"{seed}-{i}")
                rows.append({"recipe": name, "seed": seed, **result})
                print(f"seed {seed}, {name}: test top-1 {result['top1']:.2f} %, {result['images_per_second']:.0f} "
                      f"images/s, {result['seconds']:.0f} s", flush=True)
    frame = pd.DataFrame(rows)
    after = next(n for n in RECIPES if n != BEFORE)
    by = frame.pivot(index="seed", columns="recipe")
    speed = by["images_per_second"][after].median() / by["images_per_second"][BEFORE].median()
    wall = by["seconds"][BEFORE].median() / by["seconds"][after].median()
    diff = (by["top1"][after] - by["top1"][BEFORE]).to_numpy()
    half = stats.t.ppf(0.975, len(diff) - 1) * diff.std(ddof=1) / math.sqrt(len(diff)) if len(diff) > 1 else np.nan
    print(f"cheap seeds: {speed:.2f}× the training images per second, {wall:.2f}× fewer seconds per run; test top-1 "
          f"after − before {diff.mean():+.2f} points (95 % CI [{diff.mean() - half:+.2f}, {diff.mean() + half:+.2f}], "
          f"{len(diff)} seeds; per seed {', '.join(f'{d:+.2f}' for d in diff)})")


if __name__ == "__main__":
    main()
