"""The schedule registry (semscale_lib.training.schedules): every named schedule per epoch and per step, by hand."""
from __future__ import annotations

import math

import pytest
from schedules import learning_rates

from semscale_lib.training import make_config
from semscale_lib.training.schedules import SCHEDULES, STEP_SCHEDULES


@pytest.mark.parametrize("name, expected", [
    # lr 0.1, 5 epochs, a 1-epoch warm-up (epoch 0 at 0.1 · 1/1), milestones at 60 % and 80 % (epochs 3 and 4)
    ("step", [0.1, 0.1, 0.1, 0.01, 0.001]),
    ("exp", [0.1] + [0.1 * 0.5 ** e for e in range(1, 5)]),
    ("linear", [0.1] + [0.1 * (1 - e / 5) for e in range(1, 5)]),
    ("cosine", [0.1] + [0.1 * 0.5 * (1 + math.cos(math.pi * (e - 1) / 4)) for e in range(1, 5)]),
    ("constant", [0.1] * 5),
])
def test_every_schedule_per_epoch_after_the_warm_up(name, expected):
    config = make_config("cpu-quick", schedule=name, lr=0.1, epochs=5, warmup_epochs=1, milestones=[0.6, 0.8],
                         lr_step_factor=0.1, lr_gamma=0.5)
    assert learning_rates(config, 5) == pytest.approx(expected, abs=1e-12)


def test_a_warm_up_ramps_linearly_before_any_schedule():
    config = make_config("cpu-quick", schedule="constant", lr=0.3, epochs=6, warmup_epochs=3)
    assert learning_rates(config, 5) == pytest.approx([0.1, 0.2, 0.3, 0.3, 0.3])


def test_the_registry_is_the_one_list_of_schedules():
    assert set(STEP_SCHEDULES) == set(SCHEDULES) - {"exp"}          # exp has no per-step form
    with pytest.raises(ValueError, match=r"unknown schedule 'poly'; valid: \('step', 'exp'"):
        make_config("cpu-quick", schedule="poly")
    with pytest.raises(ValueError, match="schedule step, linear, cosine or constant"):
        make_config("cpu-quick", max_steps=5, warmup_epochs=0, schedule="exp")


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_the_update_is_fused_on_cuda_and_torchs_default_on_the_cpu(optimizer):
    import torch

    from semscale_lib.training.schedules import make_optimizer_and_schedule
    config = make_config("cpu-quick", optimizer=optimizer)
    cpu, _ = make_optimizer_and_schedule(torch.nn.Linear(3, 2), config)
    assert not cpu.defaults.get("fused")                 # the CPU's numbers stay the ones the notebooks recorded
    if torch.cuda.is_available():
        cuda, _ = make_optimizer_and_schedule(torch.nn.Linear(3, 2).cuda(), config)
        assert cuda.defaults["fused"] is True
