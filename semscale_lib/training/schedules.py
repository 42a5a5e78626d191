"""A run's optimizer and learning-rate schedule. Schedules by name (:data:`SCHEDULES`): each gives the factor of
the base learning rate per epoch and, where it has one, per optimizer step (runs with a step budget,
``max_steps``). ``TrainConfig.schedule`` picks one; :func:`make_optimizer_and_schedule` turns it into a
``LambdaLR``.

Both functions take the run's config (its ``epochs``, ``max_steps``, ``warmup_epochs``, ``lr_step_factor``,
``lr_gamma``) and the milestones already turned into epochs or steps. The warm-up is the caller's: it comes
before any schedule and only per epoch.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import torch

#: factor(t, config, milestones) → float; t counts epochs (from 0) or optimizer steps taken.
Factor = Callable[[int, object, Sequence[int]], float]


@dataclass(frozen=True)
class Schedule:
    """One named schedule: ``per_epoch`` (after the warm-up) and ``per_step`` (None: not usable with max_steps)."""
    per_epoch: Factor
    per_step: Optional[Factor]
    help: str


def _step(t, config, milestones):
    return config.optim.lr_step_factor ** sum(t >= m for m in milestones)


def _constant(t, config, milestones):
    return 1.0


def _cosine_epoch(epoch, config, milestones):
    done = (epoch - config.optim.warmup_epochs) / max(1, config.optim.epochs - config.optim.warmup_epochs)
    return 0.5 * (1.0 + math.cos(math.pi * done))


SCHEDULES: dict[str, Schedule] = {
    "step": Schedule(_step, _step, "×lr_step_factor at each milestone (fractions of epochs or of max_steps)"),
    "exp": Schedule(lambda epoch, config, _m: config.optim.lr_gamma ** epoch, None, "×lr_gamma per epoch"),
    "linear": Schedule(lambda epoch, config, _m: max(0.0, 1.0 - epoch / config.optim.epochs),
                       lambda step, config, _m: max(0.0, 1.0 - step / config.optim.max_steps), "linear decay to 0"),
    "cosine": Schedule(_cosine_epoch,
                       lambda step, config, _m: 0.5 * (1.0 + math.cos(math.pi * min(step, config.optim.max_steps)
                                                                       / config.optim.max_steps)),
                       "cosine decay to 0 (per epoch: from the end of the warm-up)"),
    "constant": Schedule(_constant, _constant, "the base learning rate throughout"),
}

#: Schedules usable with a step budget (``max_steps``).
STEP_SCHEDULES = tuple(name for name, schedule in SCHEDULES.items() if schedule.per_step is not None)


def make_optimizer_and_schedule(model, config):
    """SGD (momentum, weight decay) or Adam, and a LambdaLR: per epoch, linear warm-up then step / exp / linear /
    cosine / constant (linear and cosine decay from the end of the warm-up towards 0 at ``epochs``); with a step
    budget (``max_steps``), per step (:func:`_step_budget_factor`). On CUDA the update is one fused kernel (the
    same update; many small launches otherwise bound a small model's step); on the CPU, torch's default."""
    params = list(model.parameters())
    fused = {"fused": True} if params and all(p.is_cuda for p in params) else {}
    if config.optim.optimizer == "sgd":
        optimizer = torch.optim.SGD(params, lr=config.optim.lr, momentum=config.optim.momentum,
                                    weight_decay=config.optim.weight_decay, **fused)
    else:
        optimizer = torch.optim.Adam(params, lr=config.optim.lr, weight_decay=config.optim.weight_decay, **fused)
    if config.optim.max_steps is not None:
        return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, _step_budget_factor(config))
    schedule = SCHEDULES[config.optim.schedule]
    milestones = [round(f * config.optim.epochs) for f in config.optim.milestones]

    def factor(epoch: int) -> float:          # epoch counts from 0 here (LambdaLR convention)
        if epoch < config.optim.warmup_epochs:
            return (epoch + 1) / config.optim.warmup_epochs
        return schedule.per_epoch(epoch, config, milestones)

    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def _step_budget_factor(config):
    """With a step budget (``max_steps``) the schedule runs over steps, so that runs of different epoch lengths
    with the same budget see the same learning rate at every step (milestones: fractions of ``max_steps``)."""
    milestones = [round(f * config.optim.max_steps) for f in config.optim.milestones]
    per_step = SCHEDULES[config.optim.schedule].per_step
    return lambda step: per_step(step, config, milestones)     # step: optimizer steps taken so far


__all__ = ["SCHEDULES", "STEP_SCHEDULES", "Schedule", "make_optimizer_and_schedule"]
