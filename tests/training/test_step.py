"""The criterion (a run's weighting rule + weighted loss) and train_step, the step the trainer and benchmarks share."""
from __future__ import annotations

import contextlib
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
from semscale_lib.weights import dsb_class_weights

from host_syncs import count_host_syncs


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



# ------------------------------------------------------------------------------ DSB without host synchronisation
def _dsb_criterion(device, *, pool="fifo", target="S", normalize="sum1", classes=4, batch=8, batches=6):
    """A DSB criterion on ``device`` (stage 3 from epoch 2, refreshed every iteration, every 2nd refresh logged) and
    one epoch of ``batches`` mini-batches (logits, targets, features, indices) there."""
    config = make_config(dataset="digits", reweight="dsb", dsb_stage_epochs=1, dsb_refresh_every=1, dsb_pool=pool,
                         dsb_pool_dim=4, dsb_target=target, dsb_normalize=normalize, dsb_log_every=2)
    size = batch * batches
    criterion = Criterion.from_config(config, np.full(classes, size // classes), dataset_size=size, device=device)
    g = torch.Generator().manual_seed(3)
    targets = torch.arange(size) % classes
    features = torch.randn(size, 8, generator=g) * (1.0 + targets[:, None]) + targets[:, None]
    logits = torch.randn(size, classes, generator=g)
    batches = [tuple(t[i:i + batch].to(device) for t in (logits, targets, features, torch.arange(size)))
               for i in range(0, size, batch)]
    return criterion, batches


def _two_epochs(criterion, batches, watched):
    """Epoch 1 (stage 1) and epoch 2 (stage 3) with every iteration after the first of each inside ``watched()``
    (a context manager); returns the last loss."""
    for epoch in (1, 2):
        criterion.start_epoch(epoch)
        for i, (logits, targets, features, indices) in enumerate(batches):
            with watched() if i else contextlib.nullcontext():
                loss = criterion(logits, targets, epoch=epoch, features=features, indices=indices)
        criterion.end_epoch()
    return loss


@pytest.mark.parametrize("pool,target,normalize", [("fifo", "S", "sum1"), ("per-sample", "S", "mean1"),
                                                   ("fifo", "S'", "none"), ("per-sample", "W", "sum1")])
def test_a_dsb_iteration_never_reads_a_value_back_from_the_device(pool, target, normalize, monkeypatch):
    """DSB's pool update, S refresh, weights and the loss's new weights without one operation that would make the
    host wait for a CUDA device (tests/host_syncs.py): none in stage 1, none in stage 3, where the weights are
    refreshed at every iteration and every 2nd refresh is logged. The log is read back once, by log_rows."""
    criterion, batches = _dsb_criterion("cpu", pool=pool, target=target, normalize=normalize)
    counted = []

    @contextlib.contextmanager
    def watched():
        with count_host_syncs(monkeypatch) as calls:
            yield
        counted.append(dict(calls))

    loss = _two_epochs(criterion, batches, watched)
    assert counted == [{}] * 10 and torch.isfinite(loss)
    assert [row["iteration"] for row in criterion.log_rows()] == [7, 9, 11]       # 6 refreshes in epoch 2
    expected = dsb_class_weights(criterion.rule.dynamic.current_scales(), normalize).float()
    assert torch.equal(criterion.loss.weights, expected)


def test_the_host_sync_counter_sees_each_kind_of_sync(monkeypatch):
    """The counter of the test above can fail: each way of reading back or of data-dependent shape is counted."""
    x = torch.tensor([1.0, -2.0, 3.0])
    with count_host_syncs(monkeypatch) as calls:
        x.sum().item(), x.tolist(), x.cpu(), x.numpy(), bool(x[0] > 0), int(x[0]), float(x[0])
        torch.nonzero(x > 0), x.nonzero(), torch.unique(x), torch.where(x > 0), x[x > 0]
        x[x < 0] = 0.0
        if x.max() > 0:
            pass
    assert calls == {"Tensor.item": 1, "Tensor.tolist": 1, "Tensor.cpu": 1, "Tensor.numpy": 1, "Tensor.__bool__": 2,
                     "Tensor.__int__": 1, "Tensor.__float__": 1, "torch.nonzero": 1, "Tensor.nonzero": 1,
                     "torch.unique": 1, "torch.where(condition)": 1, "Tensor[bool mask]": 1,
                     "Tensor[bool mask] =": 1}


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("pool", ["fifo", "per-sample"])
def test_a_dsb_iteration_on_cuda_does_not_synchronise(pool):
    """The same two epochs on CUDA under torch.cuda.set_sync_debug_mode("error"): a synchronising call raises."""
    criterion, batches = _dsb_criterion("cuda", pool=pool)

    @contextlib.contextmanager
    def watched():
        torch.cuda.synchronize()
        torch.cuda.set_sync_debug_mode("error")
        try:
            yield
        finally:
            torch.cuda.set_sync_debug_mode(0)

    loss = _two_epochs(criterion, batches, watched)
    assert torch.isfinite(loss).item() and criterion.loss.weights.is_cuda
    assert [row["iteration"] for row in criterion.log_rows()] == [7, 9, 11]
    expected = dsb_class_weights(criterion.rule.dynamic.current_scales(), "sum1").float()
    assert torch.equal(criterion.loss.weights, expected)
