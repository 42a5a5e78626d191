"""The learning rates a config's optimizer and schedule give, step by step (shared by the trainer tests)."""
from __future__ import annotations

import torch

from semscale_lib.training import make_optimizer_and_schedule


def learning_rates(config, steps: int) -> list[float]:
    """The learning rate before each of ``steps`` scheduler steps of ``config``'s optimizer and schedule."""
    optimizer, scheduler = make_optimizer_and_schedule(torch.nn.Linear(2, 2), config)
    rates = []
    for _ in range(steps):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return rates
