"""Evaluating a model on in-memory batches: top-1, per-class accuracy with the paper's many / medium / few groups,
and the embeddings of the same pass."""
from __future__ import annotations

import numpy as np
import torch

from ..metrics import group_accuracy, per_class_accuracy


@torch.no_grad()
def evaluate(model, batches, counts: np.ndarray, *, batch_size: int, amp: bool = False) -> dict:
    """Top-1 (over test samples), per-class accuracy (C,), many/medium/few; plus the embeddings (N, D)."""
    was_training = model.training
    model.eval()
    predictions, embeddings = [], []
    for inputs, _ in batches.ordered(batch_size):
        inputs = inputs.contiguous(memory_format=torch.channels_last)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
            logits, features = model(inputs, return_features=True)
        predictions.append(logits.argmax(1).cpu())
        embeddings.append(features.float().cpu())
    model.train(was_training)
    predictions = torch.cat(predictions).numpy()
    targets = batches.labels.cpu().numpy()
    per_class = per_class_accuracy(predictions, targets, len(counts))
    groups = group_accuracy(per_class, counts)
    return {"top1": float((predictions == targets).mean()), "per_class": per_class,
            "many": groups["many"], "medium": groups["medium"], "few": groups["few"],
            "embeddings": torch.cat(embeddings).numpy()}


@torch.no_grad()
def top1(model, batches, *, batch_size: int, amp: bool = False) -> float:
    """Top-1 accuracy (a fraction) of ``model`` over ``batches`` (in order, no augmentation), e.g. the validation
    images or the training images themselves; a class may be missing."""
    was_training = model.training
    model.eval()
    hits = 0
    for inputs, targets in batches.ordered(batch_size):
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
            logits = model(inputs.contiguous(memory_format=torch.channels_last))
        hits += int((logits.argmax(1) == targets.to(logits.device)).sum())
    model.train(was_training)
    return hits / max(1, len(batches.labels))


__all__ = ["evaluate", "top1"]
