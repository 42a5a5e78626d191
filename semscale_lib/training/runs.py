"""A run folder: what the trainer writes into it and how to read it back (metrics, per-class table, the final
model's embeddings of any images).

Files: ``config.json`` (every setting, versions, device, training counts, split file), ``metrics.csv`` (per
epoch), ``per_class.csv`` (final per-class accuracy, counts, semantic scales of the test embeddings),
``weights.csv`` (logged weight refreshes, DSB only), ``test_features.npz``, ``checkpoint.pt`` and, for a per-class
subset, ``subset_split.txt`` (its indices, a split file of :func:`semscale_lib.data.save_split`).
"""
from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .. import paths
from ..data import ImageArrays
from ..data.run_data import RunData, tensor_batches, training_arrays
from ..features import embed_batches
from ..imbalance import quantify_imbalance
from ..models import build_model
from ..scale import pool_features
from .config import TrainConfig, make_config
from .device import resolve_device
from .splits import run_splits

CHECKPOINT = "checkpoint.pt"
SUBSET_FILE = "subset_split.txt"
FEATURES_FILE = "test_features.npz"
MAX_SAVED_DIMS = 512


def default_out_dir(config: TrainConfig) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    name = (f"{config.data.dataset}-{config.model}-{config.loss.name}-{config.weighting.rule}-seed{config.optim.seed}"
            f"-{stamp}")
    return paths.runs_root() / "train" / name


def write_tables(out: Path, history: list[dict], weight_rows: list[dict]) -> None:
    """metrics.csv (one row per epoch) and, when any refresh was logged, weights.csv."""
    pd.DataFrame(history).to_csv(out / "metrics.csv", index=False)
    if weight_rows:
        pd.DataFrame(weight_rows).to_csv(out / "weights.csv", index=False)


def atomic_save(obj, path: Path) -> None:
    """torch.save through a temporary file, so a kill never leaves a truncated checkpoint."""
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def write_per_class(out: Path, data: RunData, result: dict, config: TrainConfig) -> None:
    """per_class.csv: final test accuracy, training count and the semantic scales of the test embeddings;
    test_features.npz: those embeddings (average-pooled to 512 dims if wider) with their labels."""
    embeddings = pool_features(result["embeddings"], MAX_SAVED_DIMS)
    test_labels = data.test.labels.cpu().numpy()
    np.savez_compressed(out / FEATURES_FILE, features=embeddings, labels=test_labels)
    table = quantify_imbalance(embeddings, test_labels, alpha=config.weighting.dsb.alpha, num_classes=len(data.counts),
                               class_names=data.classes)
    table = table.rename(columns={"count": "test_count"})
    table.insert(2, "train_count", data.counts)
    table.insert(3, "accuracy", result["per_class"])
    table.to_csv(out / "per_class.csv", index=False)


@dataclass
class RunRecord:
    """A finished (or interrupted) run folder, read back by :func:`load_run`.

    ``saved``: its ``config.json`` as written (``config``: the settings; ``code``, ``environment``,
    ``train_counts``, ``val_counts``, ``split_file``, ``world_size``, ``reduction``); ``metrics``: one row per
    epoch; ``per_class`` (final per-class accuracy and semantic scales) and ``weights`` (logged DSB refreshes):
    DataFrames, None where not written; ``test_features`` (N, d) float32 and ``test_labels`` (N,) int64 when saved.
    """
    folder: Path
    saved: dict
    metrics: pd.DataFrame
    per_class: pd.DataFrame | None = None
    weights: pd.DataFrame | None = None
    test_features: np.ndarray | None = None
    test_labels: np.ndarray | None = None

    @property
    def settings(self) -> dict:
        """The run's settings by their flat names (TrainConfig.to_dict, as saved)."""
        return dict(self.saved["config"])

    @property
    def train_counts(self) -> list[int]:
        """Training images per class (C,), as the run counted them."""
        return [int(n) for n in self.saved["train_counts"]]


def load_run(out_dir) -> RunRecord:
    """The :class:`RunRecord` of a run folder."""
    out = Path(out_dir)
    tables = {name: pd.read_csv(out / f"{name}.csv") if (out / f"{name}.csv").exists() else None
              for name in ("per_class", "weights")}
    features = labels = None
    if (out / FEATURES_FILE).exists():
        with np.load(out / FEATURES_FILE) as saved:
            features, labels = saved["features"], saved["labels"]
    return RunRecord(out, json.loads((out / "config.json").read_text()), pd.read_csv(out / "metrics.csv"),
                     tables["per_class"], tables["weights"], features, labels)


def run_config(run: RunRecord) -> TrainConfig:
    """The TrainConfig a loaded run (:func:`load_run`) was trained with."""
    return make_config(**run.settings)


def training_images(run: RunRecord, data_root=None) -> ImageArrays:
    """The training images of a finished run (:func:`load_run`), exactly the set the model saw: the whole
    training set, its long-tailed split (read where the run read it: the project's splits folder or the run
    folder) or its per-class subset (:func:`~semscale_lib.data.run_data.training_arrays`)."""
    config = run_config(run)
    if data_root is not None:
        config.data.data_root = str(data_root)
    with run_splits(config, run.folder) if run.folder is not None else contextlib.nullcontext():
        images, _, _ = training_arrays(config.data)
    counts = np.bincount(images.labels, minlength=images.num_classes).tolist()
    if counts != run.train_counts:
        raise ValueError(f"training images give counts {counts}, the run recorded {run.train_counts}")
    return images


@torch.no_grad()
def embed_run(run_dir, images: ImageArrays, *, batch_size: int = 512, device: str | None = None,
              with_predictions: bool = False):
    """Embeddings ``(N, D)`` float32 of ``images`` by the final model of a run (its checkpoint), normalised with the
    run's training statistics (the mean/sd of its training images, as in training). ``with_predictions``: also
    return the model's predicted class of each image, ``(N,)`` int64, from the same pass. ``device``: where the
    forward passes run; default the run's own device setting (``auto``: CUDA when this machine has it), so that a
    GPU study embeds on the GPU. The results come back as numpy arrays in host memory."""
    run_dir = Path(run_dir)
    run = load_run(run_dir)
    config = run_config(run)
    device = resolve_device(config.device if device is None else device)
    checkpoint = run_dir / CHECKPOINT
    if not checkpoint.exists():
        raise FileNotFoundError(f"{checkpoint} not found: the run's final model is needed for its embeddings")
    model = build_model(config.model, len(run.train_counts), in_channels=images.images.shape[-1],
                        input_size=tuple(images.images.shape[1:3]), normalized_classifier=config.loss.name == "ldam")
    model.load_state_dict(torch.load(checkpoint, map_location=device, weights_only=False)["model"])
    model.to(device)
    reference = tensor_batches(training_images(run), device=device, dataset=config.data.dataset)
    batches = tensor_batches(images, device=device, dataset=config.data.dataset, reference=reference)
    features, _, predictions = embed_batches(model, batches.ordered(batch_size), device=device)
    return (features.numpy(), predictions.numpy()) if with_predictions else features.numpy()
