"""Class-weight rules (semscale_lib.weights) against hand-computed weights."""
import numpy as np
import pytest
import torch

from semscale_lib.dsb import DSBSettings
from semscale_lib.training import make_config
from semscale_lib.weights import (
    WEIGHTINGS,
    ClassBalanced,
    DeferredReweighting,
    SemanticScaleBalanced,
    StaticWeights,
    WeightRule,
    build_weighting,
    class_balanced_weights,
    default_reduction,
    dsb_class_weights,
)

from host_syncs import count_host_syncs


def test_class_balanced_weights_hand_value():
    # beta = 0.5: E_1 = (1 - .5) / .5 = 1, E_2 = (1 - .25) / .5 = 1.5 -> w ∝ [1, 2/3], sum 2 -> [1.2, 0.8]
    w = class_balanced_weights([1, 2], beta=0.5)
    assert isinstance(w, torch.Tensor)
    assert w.tolist() == pytest.approx([1.2, 0.8], rel=1e-6)
    assert class_balanced_weights([5, 500, 50]).sum().item() == pytest.approx(3.0, rel=1e-6)


def test_dsb_weights_modes():
    s = [1.0, 2.0, 4.0]
    assert dsb_class_weights(np.array(s)).tolist() == pytest.approx([4 / 7, 2 / 7, 1 / 7])
    assert dsb_class_weights(np.array(s), "mean1").tolist() == pytest.approx([12 / 7, 6 / 7, 3 / 7])
    assert dsb_class_weights(np.array(s), "none").tolist() == pytest.approx([1.0, 0.5, 0.25])
    out = dsb_class_weights(torch.tensor(s, dtype=torch.float64))
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float64
    assert out.tolist() == pytest.approx([4 / 7, 2 / 7, 1 / 7])
    assert isinstance(dsb_class_weights(np.array(s)), np.ndarray)


@pytest.mark.parametrize("bad,idx", [([1.0, 0.0, 2.0], "[1]"), ([1.0, float("nan"), -1.0], "[1, 2]"),
                                     ([float("inf"), 1.0], "[0]")])
def test_dsb_weights_bad_scales(bad, idx):
    with pytest.raises(ValueError, match=idx.replace("[", r"\[").replace("]", r"\]")):
        dsb_class_weights(np.array(bad))
    with pytest.raises(ValueError):
        dsb_class_weights(np.array([1.0, 2.0]), normalize="max1")


@pytest.mark.parametrize("normalize", ["sum1", "mean1", "none"])
def test_dsb_weights_of_a_tensor_stay_on_its_device_and_equal_the_array_path(normalize, monkeypatch):
    """A tensor S (DSB, every refresh) is computed in torch, never read back; in float32 (what the loss uses) the
    weights are those of the numpy path, and in float64 they differ at most in the last bits (Σ in another order)."""
    g = torch.Generator().manual_seed(4)
    for classes in (3, 10, 100):
        for _ in range(20):
            s = torch.rand(classes, generator=g, dtype=torch.float64) * 5 + 0.01
            with count_host_syncs(monkeypatch) as calls:
                a = dsb_class_weights(s, normalize)
            assert calls == {} and a.dtype == torch.float64
            expected = dsb_class_weights(s.numpy(), normalize)
            assert torch.equal(a.float(), torch.from_numpy(expected).float())
            np.testing.assert_allclose(a.numpy(), expected, rtol=1e-15, atol=0)
    assert dsb_class_weights(torch.tensor([1.0, 2.0]), normalize).dtype == torch.float32


@pytest.mark.parametrize("bad,idx", [([1.0, 0.0, 2.0], "[1]"), ([1.0, float("nan"), -1.0], "[1, 2]"),
                                     ([float("inf"), 1.0], "[0]")])
def test_dsb_weights_of_a_bad_tensor_name_the_classes(bad, idx):
    with pytest.raises(ValueError, match="offending class indices: " + idx.replace("[", r"\[").replace("]", r"\]")):
        dsb_class_weights(torch.tensor(bad, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"1/S overflows float64 for classes \[0\].*normalize='sum1' or 'mean1'"):
        dsb_class_weights(torch.tensor([1e-320, 1.0], dtype=torch.float64), "none")


def test_registry_names_and_default_reductions():
    assert list(WEIGHTINGS) == ["none", "cb", "drw", "static", "dsb"]
    assert {name: default_reduction(name) for name in WEIGHTINGS} == {
        "none": "mean", "cb": "mean", "drw": "weighted-mean", "static": "mean", "dsb": "mean"}
    with pytest.raises(ValueError, match="unknown reweight 'ipw'.*none, cb, drw, static, dsb"):
        default_reduction("ipw")


def test_build_weighting_reads_the_config():
    counts = np.array([100, 10])
    config = make_config(dataset="digits", reweight="drw", epochs=10, drw_start=0.5, cb_beta=0.5)
    rule = build_weighting(config, counts, dataset_size=110)
    assert isinstance(rule, DeferredReweighting) and rule.start_epoch == 5
    assert rule.epoch_weights(5) is None
    assert rule.epoch_weights(6).tolist() == pytest.approx(class_balanced_weights(counts, 0.5).tolist())
    assert isinstance(build_weighting(make_config(dataset="digits", reweight="cb"), counts, dataset_size=110),
                      ClassBalanced)
    static = build_weighting(make_config(dataset="digits", reweight="static", class_weights=[1.0, 3.0]), counts,
                             dataset_size=110)
    assert isinstance(static, StaticWeights) and static.epoch_weights(1).tolist() == [1.0, 3.0]
    with pytest.raises(ValueError, match="2 numbers"):
        build_weighting(make_config(dataset="digits", reweight="static", class_weights=[1.0]), counts,
                        dataset_size=110)
    plain = build_weighting(make_config(dataset="digits"), counts, dataset_size=110)
    assert type(plain) is WeightRule and plain.epoch_weights(1) is None and plain.step(1, None, None) is None


def test_static_weights_are_checked():
    with pytest.raises(ValueError, match="finite numbers ≥ 0"):
        StaticWeights([1.0, float("nan")])
    with pytest.raises(ValueError, match="finite numbers ≥ 0"):
        StaticWeights([1.0, -2.0])


def test_dsb_rule_is_unweighted_until_stage_3_then_a_is_proportional_to_1_over_s():
    torch.manual_seed(0)
    settings = DSBSettings(stage_epochs=1, pool_dim=None, normalize="mean1", log_every=1)
    rule = SemanticScaleBalanced(3, settings, dataset_size=60)
    features = torch.randn(60, 4) * torch.tensor([1.0, 2.0, 3.0, 4.0])
    labels = torch.arange(60) % 3
    assert rule.epoch_weights(1) is None
    assert rule.step(1, features[:30], labels[:30]) is None                  # stage 1: pool only
    rule.end_epoch()
    weights = rule.step(2, features[30:], labels[30:])                        # stage 3: refreshed
    assert weights is not None and weights.dtype == torch.float32
    assert float(weights.sum()) == pytest.approx(3.0, rel=1e-6)
    row = rule.log_rows()[-1]
    s = np.array([row[f"S_{c}"] for c in range(3)])
    np.testing.assert_allclose(weights.numpy(), dsb_class_weights(s, "mean1"), rtol=1e-6)
    assert torch.equal(rule.epoch_weights(3), weights)                       # kept into the next epoch
    restored = SemanticScaleBalanced(3, settings, dataset_size=60)
    restored.load_state_dict(rule.state_dict())
    assert torch.equal(restored.epoch_weights(3), weights) and restored.log_rows() == rule.log_rows()


def test_drw_always_reweights_the_last_epoch_of_a_short_run():
    """Cao et al.'s 160 of 200 epochs; a 2-epoch run (0.8 · 2 → 2) still re-weights its second epoch."""
    from semscale_lib.weights import drw_start_epoch

    assert drw_start_epoch(0.8, 200) == 160 and drw_start_epoch(0.8, 3) == 2
    assert drw_start_epoch(0.8, 2) == 1 and drw_start_epoch(0.8, 1) == 0
    rule = build_weighting(make_config(dataset="digits", reweight="drw", epochs=2), np.array([100, 10]),
                           dataset_size=110)
    assert rule.epoch_weights(1) is None and rule.epoch_weights(2) is not None


def test_dsb_weights_of_a_tiny_scale_do_not_overflow():
    """1/1e-320 overflows float64; the weights come from S_min/S instead."""
    s = np.array([1e-320, 1.0, 1.0])
    a = dsb_class_weights(s)
    assert np.all(np.isfinite(a)) and a[0] == pytest.approx(1.0) and a[1:] == pytest.approx([1e-320, 1e-320])
    assert dsb_class_weights(s, "mean1") == pytest.approx([3.0, 3e-320, 3e-320])
    assert dsb_class_weights(torch.tensor(s, dtype=torch.float64)).tolist() == pytest.approx([1.0, 1e-320, 1e-320])
    with pytest.raises(ValueError, match=r"1/S overflows float64 for classes \[0\].*normalize='sum1' or 'mean1'"):
        dsb_class_weights(s, "none")
