"""Tests for semscale_lib.losses against values worked out by hand with the math module."""
import math

import numpy as np
import pytest
import torch

from semscale_lib.losses import (
    LOSSES,
    BalancedSoftmaxLoss,
    ClassWeighting,
    CrossEntropy,
    FocalLoss,
    LDAMLoss,
    LogitAdjustedLoss,
    build_loss,
)

from host_syncs import count_host_syncs

E = math.e
Z = torch.tensor([[1.0, 2.0, 3.0]])
Y2 = torch.tensor([2])


def _ce(row, y):
    """Hand cross-entropy of one row of logits."""
    return math.log(sum(math.exp(v) for v in row)) - row[y]


def test_cross_entropy_hand_value():
    expected = math.log(E + E**2 + E**3) - 3
    assert CrossEntropy()(Z, Y2).item() == pytest.approx(expected, rel=1e-6)
    assert CrossEntropy(reduction="none")(Z, Y2).shape == (1,)


def test_focal_gamma0_is_ce():
    z = torch.tensor([[0.3, -1.0, 2.0], [1.0, 1.0, 1.0]])
    y = torch.tensor([0, 2])
    assert torch.allclose(FocalLoss(0.0, reduction="none")(z, y), CrossEntropy(reduction="none")(z, y))


def test_focal_gamma2_hand_value():
    p = E**3 / (E + E**2 + E**3)
    expected = -((1 - p) ** 2) * math.log(p)
    assert FocalLoss(gamma=2.0)(Z, Y2).item() == pytest.approx(expected, rel=1e-5)


def test_focal_stable_when_confident():
    z = torch.tensor([[200.0, 0.0, -200.0]], requires_grad=True)
    loss = FocalLoss(gamma=2.0)(z, torch.tensor([0]))
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(z.grad).all()


def test_ldam_margins_and_loss():
    counts = [100, 10, 1]
    raw = [100 ** -0.25, 10 ** -0.25, 1.0]  # n^{-1/4}; the largest (n = 1) becomes max_margin
    margins = [0.5 * r / 1.0 for r in raw]  # [0.158114, 0.281171, 0.5]
    loss = LDAMLoss(counts, max_margin=0.5, scale=30.0, reduction="none")
    assert loss.margins.tolist() == pytest.approx(margins, rel=1e-6)
    assert margins[0] == pytest.approx(0.1581139, rel=1e-6)
    z = [[0.1, 0.2, 0.3], [0.4, -0.2, 0.1]]
    y = [0, 2]
    expected = []
    for row, t in zip(z, y):
        shifted = [30.0 * (v - (margins[t] if j == t else 0.0)) for j, v in enumerate(row)]
        expected.append(_ce(shifted, t))
    got = loss(torch.tensor(z), torch.tensor(y))
    assert got.tolist() == pytest.approx(expected, rel=1e-5)


def test_balanced_softmax_hand_value():
    counts = [50, 5, 1]
    row = [1.0, 2.0, 3.0]
    adjusted = [v + math.log(n) for v, n in zip(row, counts)]
    assert BalancedSoftmaxLoss(counts)(Z, Y2).item() == pytest.approx(_ce(adjusted, 2), rel=1e-6)


def test_logit_adjusted_tau1_equals_balanced_softmax():
    counts = [50, 5, 1]
    z = torch.tensor([[1.0, 2.0, 3.0], [0.0, -1.0, 0.5]])
    y = torch.tensor([2, 0])
    la = LogitAdjustedLoss(counts, tau=1.0, reduction="none")(z, y)
    bs = BalancedSoftmaxLoss(counts, reduction="none")(z, y)
    assert torch.allclose(la, bs, atol=1e-6)
    # tau = 0.5 by hand: z + 0.5 log(n / 56)
    adjusted = [v + 0.5 * math.log(n / 56) for v, n in zip([1.0, 2.0, 3.0], counts)]
    la_half = LogitAdjustedLoss(counts, tau=0.5)(Z, Y2).item()
    assert la_half == pytest.approx(_ce(adjusted, 2), rel=1e-6)


def test_class_weighting_mean_of_weighted_losses():
    z = torch.tensor([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    y = torch.tensor([2, 0])
    w = torch.tensor([2.0, 1.0, 0.5])
    l0 = math.log(E + E**2 + E**3) - 3
    l1 = math.log(3.0)
    expected = (0.5 * l0 + 2.0 * l1) / 2  # plain batch mean, not Σ w l / Σ w
    loss = ClassWeighting(CrossEntropy(reduction="none"), w)
    assert loss(z, y).item() == pytest.approx(expected, rel=1e-6)
    per = ClassWeighting(CrossEntropy(reduction="none"), w, reduction="none")(z, y)
    assert per.tolist() == pytest.approx([0.5 * l0, 2.0 * l1], rel=1e-6)
    loss.set_weights(None)
    assert loss(z, y).item() == pytest.approx((l0 + l1) / 2, rel=1e-6)
    loss.set_weights(np.array([1.0, 1.0, 3.0]))
    assert loss(z, y).item() == pytest.approx((3 * l0 + l1) / 2, rel=1e-6)


def test_class_weighting_focal_alpha():
    # α-balanced focal = ClassWeighting(FocalLoss)
    p = E**3 / (E + E**2 + E**3)
    expected = -0.25 * (1 - p) ** 2 * math.log(p)
    loss = ClassWeighting(FocalLoss(2.0, reduction="none"), [1.0, 1.0, 0.25])
    assert loss(Z, Y2).item() == pytest.approx(expected, rel=1e-5)


def test_class_weighting_buffer_and_errors():
    loss = ClassWeighting(CrossEntropy(reduction="none"), [1.0, 2.0, 3.0])
    assert "weights" in dict(loss.named_buffers())
    assert loss.to(torch.float32).weights.device.type == "cpu"
    with pytest.raises(ValueError):
        ClassWeighting(CrossEntropy())  # base with mean reduction
    with pytest.raises(ValueError):
        loss.set_weights([1.0, -1.0, 1.0])
    with pytest.raises(ValueError):
        loss.set_weights([1.0, 1.0])  # wrong length caught at call time
        loss(Z, Y2)


def test_set_weights_checks_the_weights_without_reading_them_back(monkeypatch):
    """DSB sets new weights every iteration: the check must not make the host wait for a CUDA device (see
    tests/host_syncs.py), and still names the offending classes when it fails (at once, on the CPU)."""
    loss = ClassWeighting(CrossEntropy(reduction="none"))
    with count_host_syncs(monkeypatch) as calls:
        loss.set_weights(torch.tensor([0.5, 0.0, 2.0]))
    assert calls == {} and loss.weights.tolist() == [0.5, 0.0, 2.0]
    for bad in (torch.tensor([1.0, float("nan"), -1.0]), [1.0, float("inf"), -1.0]):
        with pytest.raises(ValueError, match=r"finite and >= 0; offending class indices: \[1, 2\]"):
            loss.set_weights(bad)
    assert loss.weights.tolist() == [0.5, 0.0, 2.0]                # a refused set leaves the weights as they were


def test_weighted_mean_reduction_equals_cross_entropy_with_weight():
    torch.manual_seed(0)
    z = torch.randn(16, 5, requires_grad=True)
    y = torch.randint(0, 5, (16,))
    w = torch.tensor([0.2, 1.0, 3.0, 0.5, 7.0])
    ours = ClassWeighting(CrossEntropy(reduction="none"), w, reduction="weighted-mean")(z, y)
    reference = torch.nn.functional.cross_entropy(z, y, weight=w)
    assert ours.item() == pytest.approx(reference.item(), rel=1e-6)
    g_ours, = torch.autograd.grad(ours, z)
    g_reference, = torch.autograd.grad(reference, z)
    torch.testing.assert_close(g_ours, g_reference)
    # hand value on two samples: (0.5·l0 + 2·l1) / (0.5 + 2); invariant to the weights' scale
    z2, y2 = torch.tensor([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]]), torch.tensor([2, 0])
    l0, l1 = math.log(E + E**2 + E**3) - 3, math.log(3.0)
    for scale in (1.0, 10.0):
        loss = ClassWeighting(CrossEntropy(reduction="none"), [2.0 * scale, 1.0, 0.5 * scale],
                              reduction="weighted-mean")
        assert loss(z2, y2).item() == pytest.approx((0.5 * l0 + 2.0 * l1) / 2.5, rel=1e-6)
    unweighted = ClassWeighting(CrossEntropy(reduction="none"), None, reduction="weighted-mean")
    assert unweighted(z2, y2).item() == pytest.approx((l0 + l1) / 2, rel=1e-6)
    with pytest.raises(ValueError, match="reduction"):
        ClassWeighting(CrossEntropy(reduction="none"), w, reduction="sum")


@pytest.mark.parametrize("name", list(LOSSES))
def test_gradients_flow(name):
    counts = [30, 5, 1]
    base = build_loss(name, counts)
    assert base.reduction == "none"
    z = torch.randn(4, 3, requires_grad=True)
    y = torch.tensor([0, 1, 2, 2])
    per = base(z, y)
    assert per.shape == (4,)
    ClassWeighting(base, [1.0, 2.0, 3.0])(z, y).backward()
    assert z.grad is not None and torch.isfinite(z.grad).all() and z.grad.abs().sum() > 0


def test_build_loss_errors_and_options():
    with pytest.raises(ValueError) as err:
        build_loss("hinge", [1, 2])
    for name in LOSSES:
        assert name in str(err.value)
    with pytest.raises(TypeError, match="gama"):
        build_loss("focal", None, gama=2.0)
    with pytest.raises(ValueError):
        build_loss("ldam", None)
    assert build_loss("focal", None, gamma=2.0).gamma == 2.0
    assert build_loss("ldam", [10, 1], max_margin=0.3).margins.max().item() == pytest.approx(0.3)
    with pytest.raises(ValueError):
        LDAMLoss([10, 0, 1])
