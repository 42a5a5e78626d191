"""Semantic scale (Eq. 3) against closed forms, the authors' plain-det formula and invariances."""
import math

import numpy as np
import pytest
import torch

from semscale_lib import (
    class_semantic_scales,
    effective_number,
    multiscale_semantic_scale,
    pool_features,
    sample_volume,
    semantic_scale,
    semantic_scale_plain_det,
)
from semscale_lib.scale import semantic_scales_from_moments


def centred_with_spectrum(m: int, d: int, eigenvalues, seed: int = 0) -> np.ndarray:
    """(m, d) rows with zero mean whose scatter XᵀX has exactly the given non-zero eigenvalues."""
    rng = np.random.default_rng(seed)
    k = len(eigenvalues)
    centred = rng.normal(size=(m, k))
    centred -= centred.mean(axis=0)
    left, _ = np.linalg.qr(centred)                      # m × k, orthonormal columns ⟂ 1
    right, _ = np.linalg.qr(rng.normal(size=(d, k)))     # d × k, orthonormal
    return left @ np.diag(np.sqrt(eigenvalues)) @ right.T


def closed_form(m, d, eigenvalues, eps=1.0):
    return 0.5 * sum(math.log2(1 + d / (m * eps**2) * lam) for lam in eigenvalues)


def test_two_points_by_hand():
    # mean (1, 0); centred rows ±(1, 0); XᵀX = diag(2, 0); d/m = 1 → det = 3
    assert semantic_scale(np.array([[0.0, 0.0], [2.0, 0.0]])) == pytest.approx(0.5 * math.log2(3), abs=1e-12)


@pytest.mark.parametrize("m,d", [(40, 5), (6, 30), (12, 12)])
def test_closed_form_known_spectrum(m, d):
    lam = [3.0, 1.0, 0.25, 0.01][: min(m - 1, d, 4)]
    x = centred_with_spectrum(m, d, lam)
    assert semantic_scale(x) == pytest.approx(closed_form(m, d, lam), rel=1e-10)
    assert semantic_scale(x, eps=3.0, base=math.e) == pytest.approx(
        closed_form(m, d, lam, eps=3.0) * math.log(2), rel=1e-10)


@pytest.mark.parametrize("m,d", [(20, 4), (3, 10), (50, 16)])
def test_matches_authors_plain_det_formula(m, d):
    x = np.random.default_rng(1).normal(size=(m, d)) * 2.0 + 5.0
    assert semantic_scale(x) == pytest.approx(semantic_scale_plain_det(x), rel=1e-10)


def test_sylvester_path_equals_full_path():
    x = np.random.default_rng(2).normal(size=(7, 40))      # m < d: the m×m Gram is used
    xc = x - x.mean(0)
    full = 0.5 * np.linalg.slogdet(np.eye(40) + (40 / 7) * xc.T @ xc)[1] / math.log(2)
    assert semantic_scale(x) == pytest.approx(full, rel=1e-12)


def test_invariant_to_sample_order_and_rotation():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(30, 8))
    rotation, _ = np.linalg.qr(rng.normal(size=(8, 8)))
    base = semantic_scale(x)
    assert semantic_scale(x[rng.permutation(30)]) == pytest.approx(base, rel=1e-12)
    assert semantic_scale(x @ rotation) == pytest.approx(base, rel=1e-10)
    assert semantic_scale(x + 100.0) == pytest.approx(base, rel=1e-9)     # centring removes translation


def test_grows_with_added_samples_on_average():
    rng = np.random.default_rng(4)
    sizes = [2, 4, 8, 16, 32]
    curves = []
    for _ in range(20):
        pool = rng.normal(size=(32, 16))
        curves.append([semantic_scale(pool[:m]) for m in sizes])     # nested subsets
    mean_curve = np.mean(curves, axis=0)
    assert np.all(np.diff(mean_curve) > 0)


def test_large_dimension_where_plain_det_overflows():
    m, d = 600, 512
    lam = np.full(512, 4.0)
    x = centred_with_spectrum(m, d, lam, seed=5)
    assert semantic_scale_plain_det(x) == math.inf
    assert semantic_scale(x) == pytest.approx(closed_form(m, d, lam), rel=1e-9)


def test_single_sample_is_zero_and_empty_is_error():
    assert semantic_scale(np.ones((1, 5))) == 0.0
    with pytest.raises(ValueError, match="at least one sample"):
        semantic_scale(np.zeros((0, 5)))


@pytest.mark.parametrize("bad,message", [
    (np.array([[1.0, np.nan], [0.0, 1.0]]), "NaN or inf"),
    (np.array([[1.0, np.inf], [0.0, 1.0]]), "NaN or inf"),
    (np.ones(5), "ndim=1"),
    (np.ones((2, 3, 4)), "ndim=3"),
])
def test_bad_features_raise(bad, message):
    with pytest.raises(ValueError, match=message):
        semantic_scale(bad)


@pytest.mark.parametrize("eps", [0.0, -1.0, float("nan")])
def test_bad_eps_raises(eps):
    with pytest.raises(ValueError, match="eps"):
        semantic_scale(np.ones((3, 2)), eps=eps)


def test_torch_input_equals_numpy():
    x = np.random.default_rng(6).normal(size=(25, 6))
    assert semantic_scale(torch.from_numpy(x).float()) == pytest.approx(semantic_scale(x), rel=1e-6)
    labels = np.repeat(np.arange(5), 5)
    np.testing.assert_allclose(class_semantic_scales(torch.from_numpy(x), torch.from_numpy(labels)),
                               class_semantic_scales(x, labels), rtol=1e-12)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_input_equals_cpu():
    x = np.random.default_rng(7).normal(size=(300, 64))
    labels = np.arange(300) % 7
    np.testing.assert_allclose(class_semantic_scales(torch.from_numpy(x).cuda(), labels),
                               class_semantic_scales(x, labels), rtol=1e-9)


def test_class_scales_equal_per_class_loop_with_mixed_sizes():
    rng = np.random.default_rng(8)
    labels = np.concatenate([np.full(n, c) for c, n in enumerate([1, 3, 10, 40, 200])])
    x = rng.normal(size=(len(labels), 20)) * rng.uniform(0.5, 3, size=20)
    shuffled = rng.permutation(len(labels))
    batched = class_semantic_scales(x[shuffled], labels[shuffled])
    expected = [semantic_scale(x[labels == c]) for c in range(5)]
    np.testing.assert_allclose(batched, expected, rtol=1e-10, atol=1e-12)
    assert batched[0] == 0.0


def test_class_scales_label_errors():
    x = np.zeros((4, 2))
    with pytest.raises(ValueError, match="differ in length"):
        class_semantic_scales(x, [0, 1, 1])
    with pytest.raises(ValueError, match="≥ 0"):
        class_semantic_scales(x, [0, -1, 1, 1])
    with pytest.raises(ValueError, match="integers"):
        class_semantic_scales(x, [0, 0.5, 1, 1])
    with pytest.raises(ValueError, match=r"classes \[2\] have zero samples"):
        class_semantic_scales(x, [0, 0, 1, 1], num_classes=3)
    with pytest.raises(ValueError, match="out of range"):
        class_semantic_scales(x, [0, 0, 1, 5], num_classes=3)


def test_multiscale_matches_single_eps():
    x = np.random.default_rng(9).normal(size=(15, 30))
    grid = [0.1, 1.0, 10.0, 1000.0]
    curve = multiscale_semantic_scale(x, grid)
    np.testing.assert_allclose(curve, [semantic_scale(x, eps=e) for e in grid], rtol=1e-9)
    assert np.all(np.diff(curve) < 0)        # a larger radius packs fewer spheres


def test_moments_equal_direct_computation():
    rng = np.random.default_rng(10)
    x = rng.normal(size=(120, 8)) + 3.0
    labels = rng.integers(0, 4, size=120)
    counts = torch.tensor(np.bincount(labels, minlength=5), dtype=torch.float64)   # class 4 empty → 0
    t = torch.from_numpy(x)
    sums = torch.zeros(5, 8, dtype=torch.float64).index_add_(0, torch.from_numpy(labels), t)
    outer = torch.zeros(5, 8, 8, dtype=torch.float64).index_add_(
        0, torch.from_numpy(labels), t[:, :, None] * t[:, None, :])
    from_moments = semantic_scales_from_moments(counts, sums, outer).numpy()
    np.testing.assert_allclose(from_moments[:4], class_semantic_scales(x, labels), rtol=1e-9)
    assert from_moments[4] == 0.0


def test_effective_number_known_values():
    np.testing.assert_allclose(effective_number([1, 2, 3], 0.5), [1.0, 1.5, 1.75])
    np.testing.assert_allclose(effective_number([7, 100], 1.0), [7, 100])
    assert effective_number([5000], 0.9999)[0] == pytest.approx((1 - 0.9999**5000) / 0.0001, rel=1e-10)
    assert np.all(effective_number([10, 1000], 0.999) <= [10, 1000])
    with pytest.raises(ValueError):
        effective_number([3], 1.5)


def test_pool_features_windows_and_types():
    x = np.arange(2 * 2048, dtype=np.float32).reshape(2, 2048)
    pooled = pool_features(x, 64)
    assert pooled.shape == (2, 64)
    assert pooled[0, 0] == pytest.approx(np.mean(np.arange(32)))
    assert pooled[1, 63] == pytest.approx(np.mean(x[1, -32:]))
    torch_pooled = pool_features(torch.from_numpy(x), 64)
    assert isinstance(torch_pooled, torch.Tensor)
    np.testing.assert_allclose(torch_pooled.numpy(), pooled)
    assert pool_features(x[:, :50], 64).shape == (2, 50)          # nothing to pool
    assert pool_features(x[:, :100], 64).shape == (2, 64)         # adaptive windows


def test_sample_volume_without_resize_equals_scaled_pixels():
    rng = np.random.default_rng(11)
    images = rng.integers(0, 256, size=(30, 16, 16, 3), dtype=np.uint8)
    labels = np.arange(30) % 3
    flat = images.reshape(30, -1) / 255.0
    np.testing.assert_allclose(sample_volume(images, labels), class_semantic_scales(flat, labels), rtol=1e-5)


def test_sample_volume_resizes_grey_images_to_256_dims():
    images = np.random.default_rng(12).integers(0, 256, size=(20, 28, 28), dtype=np.uint8)
    scales = sample_volume(images, np.arange(20) % 2)
    assert scales.shape == (2,) and np.all(scales > 0)
    constant = np.full((10, 28, 28), 128, np.uint8)
    np.testing.assert_allclose(sample_volume(constant, np.arange(10) % 2), [0.0, 0.0], atol=1e-9)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        sample_volume(np.full((4, 8, 8), 2.0), np.arange(4) % 2)


# ------------------------------------------------------------------------------------------- hostile inputs
@pytest.mark.parametrize("features", [np.array([[1 + 1j, 0], [0, 1]]), torch.tensor([[1 + 1j, 0], [0, 1]]),
                                      np.array([[True, False], [False, True]]), torch.ones(2, 2, dtype=torch.bool)])
def test_complex_or_boolean_features_are_a_typeerror(features):
    """Casting complex numbers to float64 would drop the imaginary part and return a number."""
    with pytest.raises(TypeError, match="features must be real numbers"):
        semantic_scale(features)
    with pytest.raises(TypeError, match="features must be real numbers"):
        class_semantic_scales(features, [0, 1])


def test_numpy_scalars_are_accepted_for_eps_and_base():
    x = np.random.default_rng(0).normal(size=(6, 3))
    assert semantic_scale(x, eps=np.float32(1)) == semantic_scale(x, eps=1.0)
    assert semantic_scale(x, eps=np.int64(2), base=np.float64(2.0)) == semantic_scale(x, eps=2.0)
    np.testing.assert_array_equal(class_semantic_scales(x, [0, 0, 0, 1, 1, 1], eps=np.float64(0.5)),
                                  class_semantic_scales(x, [0, 0, 0, 1, 1, 1], eps=0.5))
    np.testing.assert_allclose(multiscale_semantic_scale(x, np.array([0.5, 1.0], dtype=np.float32)),
                               [semantic_scale(x, eps=0.5), semantic_scale(x, eps=1.0)], rtol=1e-12)
    for bad in (True, np.bool_(True), "1", None):
        with pytest.raises(ValueError, match="eps must be a finite number > 0"):
            semantic_scale(x, eps=bad)


def test_a_uint64_label_of_2_to_the_63_is_reported_as_it_is():
    labels = np.array([0, 1, 2**63], dtype=np.uint64)
    with pytest.raises(ValueError, match=r"label 9223372036854775808 is out of range") as error:
        class_semantic_scales(np.ones((3, 2)), labels)
    assert "-" not in str(error.value)
    with pytest.raises(ValueError, match=r"labels must be ≥ 0; found -10000000000000000000$"):
        class_semantic_scales(np.ones((2, 2)), np.array([0.0, -1e19]))


def test_a_matrix_that_fails_the_cholesky_falls_back_to_its_clipped_eigenvalues_or_gives_0():
    """I + c·M with M = diag(3, −2) is not positive definite: the exact fallback clips −2 to 0 (½·log₂ 4 = 1 bit);
    ``eig_fallback=False`` (DSB's refresh, which must not read back from the device) gives 0. Other matrices of
    the stack are unaffected."""
    from semscale_lib.scale import half_logdet_identity_plus

    mats = torch.stack([torch.diag(torch.tensor([3.0, -2.0], dtype=torch.float64)),
                        torch.diag(torch.tensor([3.0, 1.0], dtype=torch.float64))])
    coefs = torch.ones(2, dtype=torch.float64)
    assert half_logdet_identity_plus(mats, coefs).tolist() == pytest.approx([1.0, 1.5])
    assert half_logdet_identity_plus(mats, coefs, eig_fallback=False).tolist() == pytest.approx([0.0, 1.5])
