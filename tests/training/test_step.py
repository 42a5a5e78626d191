"""The criterion (a run's weighting rule + weighted loss) and train_step, the step the trainer and benchmarks share."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from semscale_lib.models import build_model
from semscale_lib.training import Criterion, make_config, train_step
from semscale_lib.losses import LOSSES
from semscale_lib.training.config import LossSettings
from semscale_lib.training.step import make_loss


def _model(seed=0):
    torch.manual_seed(seed)
    return build_model("cnn-small", 3, in_channels=1).to(memory_format=torch.channels_last)


def _batch(seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(6, 1, 8, 8, generator=g), torch.tensor([0, 1, 2, 0, 1, 2])


def test_the_criterion_sets_the_rules_weights_and_computes_the_weighted_loss():
    counts = np.array([100, 10, 1])
    config = make_config(dataset="digits", reweight="cb", cb_beta=0.9, weight_reduction="mean")
    criterion = Criterion.from_config(config, counts, dataset_size=111)
    logits, targets = torch.randn(6, 3), torch.tensor([0, 1, 2, 0, 1, 2])
    criterion.start_epoch(1)
    weights = (1 - 0.9) / (1 - 0.9 ** torch.tensor([100.0, 10, 1]))
    weights = 3 * weights / weights.sum()                                    # Cui et al.: Σ w = C
    expected = (weights[targets] * F.cross_entropy(logits, targets, reduction="none")).mean()
    assert float(criterion(logits, targets, epoch=1)) == pytest.approx(float(expected), rel=1e-5)
    assert not criterion.uses_features and criterion.state_dict() == {}


def test_a_dsb_criterion_refreshes_its_loss_weights_from_the_embeddings():
    config = make_config(dataset="digits", reweight="dsb", dsb_stage_epochs=1, dsb_refresh_every=1, dsb_pool_dim=None)
    criterion = Criterion.from_config(config, np.array([4, 4, 4]), dataset_size=12)
    assert criterion.uses_features
    g = torch.Generator().manual_seed(0)
    targets = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2])
    spread = torch.tensor([0.1, 1.0, 3.0])[targets, None]                 # class 0 tight, class 2 wide
    features = torch.randn(12, 5, generator=g) * spread
    criterion.start_epoch(1)
    criterion(torch.zeros(12, 3), targets, epoch=1, features=features, indices=torch.arange(12))
    assert criterion.loss.weights is None                                   # stage 1: unweighted
    criterion.start_epoch(2)
    criterion(torch.zeros(12, 3), targets, epoch=2, features=features, indices=torch.arange(12))
    w = criterion.loss.weights
    assert w is not None and w[0] > w[1] > w[2]                            # smaller semantic scale, larger weight


def test_train_step_is_one_plain_sgd_step_and_refuses_a_non_finite_loss():
    inputs, targets = _batch()
    config = make_config(dataset="digits")
    model, reference = _model(), _model()
    criterion = Criterion.from_config(config, np.array([2, 2, 2]), dataset_size=6)
    criterion.start_epoch(1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    loss = train_step(model, criterion, optimizer, inputs, targets, epoch=1)
    by_hand = torch.optim.SGD(reference.parameters(), lr=0.1)
    expected = F.cross_entropy(reference(inputs.contiguous(memory_format=torch.channels_last)), targets)
    expected.backward()
    by_hand.step()
    assert float(loss) == pytest.approx(float(expected.detach()), rel=1e-6) and not loss.requires_grad
    for a, b in zip(model.parameters(), reference.parameters()):
        assert torch.allclose(a, b, atol=1e-6)
    before = [p.detach().clone() for p in model.parameters()]
    bad = train_step(model, criterion, optimizer, inputs * float("nan"), targets, epoch=1)
    assert not torch.isfinite(bad)
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), before))   # nothing updated


def test_each_loss_gets_its_own_options():
    config = make_config(dataset="digits", loss="ldam", ldam_max_margin=0.3, ldam_scale=20.0)
    loss = make_loss(config, np.array([100, 10]))
    assert LOSSES["ldam"].config_options == {"max_margin": "ldam_max_margin", "scale": "ldam_scale"}
    fields = {f.name for f in dataclasses.fields(LossSettings)}
    for name, entry in LOSSES.items():           # every declared option is a setting the config holds
        assert set(entry.config_options.values()) <= fields, name
    assert float(loss.base_loss.margins.max()) == pytest.approx(0.3) and loss.base_loss.scale == 20.0
    criterion = Criterion.from_config(config, np.array([100, 10]), dataset_size=110)   # the run's own loss
    assert float(criterion.loss.base_loss.margins.max()) == pytest.approx(0.3) and criterion.loss.base_loss.scale == 20.0
    assert criterion.loss.reduction == loss.reduction == config.reduction
