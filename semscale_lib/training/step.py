"""One training step: the run's :class:`Criterion` (its weighting rule and its weighted loss, one object) and
:func:`train_step`, which the trainer's loop and the benchmarks call alike.

Per epoch the criterion asks its rule for the epoch's class weights (:meth:`Criterion.start_epoch`); after every
forward pass it hands the rule the batch's embeddings (DSB's storage pool) and sets the weights the rule returns;
then it computes the weighted loss. The trainer never passes weights from the rule to the loss itself.
"""
from __future__ import annotations

import numpy as np
import torch

from ..losses import ClassWeighting, configured_loss
from ..weights import WeightRule, build_weighting


def make_loss(config, counts: np.ndarray) -> ClassWeighting:
    """The config's base loss in a :class:`~semscale_lib.losses.ClassWeighting` with the run's batch reduction
    (:func:`~semscale_lib.losses.configured_loss`); unweighted until its :class:`Criterion` sets weights."""
    return configured_loss(config.loss, counts, reduction=config.reduction)


class Criterion:
    """A run's weighting rule (:mod:`semscale_lib.weights`) and its weighted loss, called as
    ``criterion(logits (B, C), targets (B,), epoch=…, features=(B, D), indices=(B,))`` → the scalar loss.

    ``features`` and ``indices`` (the batch's embeddings and training-set indices) are used only by rules that
    read them (:attr:`uses_features`: DSB). Its state (for checkpoints) is the rule's.
    """

    def __init__(self, loss: ClassWeighting, rule: WeightRule, device="cpu"):
        self.loss, self.rule, self.device = loss.to(device), rule, torch.device(device)

    @classmethod
    def from_config(cls, config, counts: np.ndarray, *, dataset_size: int, device="cpu") -> "Criterion":
        """The criterion of a run's ``config`` with training ``counts`` (C,) of ``dataset_size`` samples."""
        rule = build_weighting(config, counts, dataset_size=dataset_size, device=device)
        return cls(configured_loss(config.loss, counts, reduction=config.reduction), rule, device)

    @property
    def uses_features(self) -> bool:
        return self.rule.uses_features

    def start_epoch(self, epoch: int) -> None:
        """The rule's weights for 1-based ``epoch`` (None: unweighted) go to the loss."""
        weights = self.rule.epoch_weights(epoch)
        self.loss.set_weights(None if weights is None else weights.to(self.device))

    def __call__(self, logits: torch.Tensor, targets: torch.Tensor, *, epoch: int,
                 features: torch.Tensor | None = None, indices: torch.Tensor | None = None) -> torch.Tensor:
        if self.rule.uses_features:
            refreshed = self.rule.step(epoch, features, targets, indices)
            if refreshed is not None:
                self.loss.set_weights(refreshed)
        return self.loss(logits.float(), targets)

    def end_epoch(self) -> None:
        self.rule.end_epoch()

    def log_rows(self) -> list[dict]:
        return self.rule.log_rows()

    def state_dict(self) -> dict:
        return self.rule.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.rule.load_state_dict(state)


def train_step(net: torch.nn.Module, criterion: Criterion, optimizer: torch.optim.Optimizer, inputs: torch.Tensor,
               targets: torch.Tensor, *, epoch: int, indices: torch.Tensor | None = None,
               amp: bool = False) -> torch.Tensor:
    """One optimizer step on a batch: forward (channels-last; bf16 autocast when ``amp``, on CUDA), the criterion,
    backward, update. ``inputs`` (B, H, W, C) or (B, C, H, W) as the model takes them, ``targets`` (B,).
    Returns the batch's loss, detached; a non-finite loss is returned without updating anything (the caller
    decides what a diverged run means)."""
    inputs = inputs.contiguous(memory_format=torch.channels_last)
    with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
        logits, features = net(inputs, return_features=True)
    loss = criterion(logits, targets, epoch=epoch, features=features, indices=indices)
    if not torch.isfinite(loss):
        return loss.detach()
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.detach()


__all__ = ["Criterion", "make_loss", "train_step"]
