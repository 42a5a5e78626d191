"""The ``device`` / ``dtype`` keywords of the measures (semscale_lib.scale, .difficulty, .neighbours, .compute):
CPU results unchanged, clear errors, float32 against float64 on closed forms, the device code path (run here on CPU
tensors) equal to the CPU path, and CUDA against CPU where a GPU is present."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from semscale_lib import difficulty, neighbours
from semscale_lib.compute import ieee_float32, measure_device
from semscale_lib.imbalance import quantify_imbalance
from semscale_lib.scale import class_semantic_scales, multiscale_semantic_scale, sample_volume, semantic_scale

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
MEASURES = [difficulty.knn_accuracy, difficulty.fisher_ratio, difficulty.nearest_centre_distance,
            difficulty.effective_rank, difficulty.silhouette]


def _clusters(seed: int = 0, classes: int = 6, per_class: int = 150, dim: int = 24):
    """ReLU features of overlapping classes (like pooled CNN embeddings), with duplicated rows (k-NN ties)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(classes * per_class, dim)) + np.repeat(rng.normal(size=(classes, dim)), per_class, 0) * 0.7
    x = np.maximum(x, 0)
    x[5] = x[7]
    x[100] = x[7]
    return x, np.repeat(np.arange(classes), per_class)


def _rotated_cross(s: float, rank: int, dims: int, seed: int = 0, offset: float = 3.0):
    """The 2·rank points ±s·e_i (i < rank), rotated at random in R^dims and shifted: their centred scatter has
    eigenvalues 2s² (rank times) and 0, so S′ = rank/2 · log₂(1 + dims/(2·rank) · 2s²) exactly."""
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(dims, dims)))
    points = np.concatenate([np.eye(dims)[:rank], -np.eye(dims)[:rank]]) * s
    return points @ q + offset, rank / 2 * math.log2(1 + dims / (2 * rank) * 2 * s * s)


# ---------------------------------------------------------------------------------------------- device names
def test_device_names_resolve_and_bad_ones_fail_in_one_line():
    assert measure_device(None) is None
    assert measure_device("cpu") == torch.device("cpu")
    assert measure_device(torch.device("cpu")) == torch.device("cpu")
    assert measure_device("mps") == torch.device("cpu")             # no float64 on MPS: measured on the CPU
    assert measure_device("auto") == torch.device("cuda" if torch.cuda.is_available() else "cpu")
    for bad in ("gpu0", "cuda:x", "", "meta"):
        with pytest.raises(ValueError, match="device") as info:
            measure_device(bad)
        assert "\n" not in str(info.value)
    with pytest.raises(TypeError, match="device"):
        measure_device(3)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_on_a_machine_without_it_fails_in_one_line():
    with pytest.raises(RuntimeError, match="CUDA was requested") as info:
        measure_device("cuda")
    assert "\n" not in str(info.value)
    with pytest.raises(RuntimeError, match="CUDA"):
        difficulty.knn_accuracy(*_clusters(), 6, device="cuda:0")


@pytest.mark.parametrize("call", [
    lambda x, y, dev: class_semantic_scales(x, y, device=dev),
    lambda x, y, dev: semantic_scale(x, device=dev),
    lambda x, y, dev: multiscale_semantic_scale(x, [1.0], device=dev),
    lambda x, y, dev: quantify_imbalance(x, y, device=dev),
    lambda x, y, dev: difficulty.knn_loo_predictions(x, y, device=dev),
    lambda x, y, dev: difficulty.class_difficulty_table(x, y, 6, device=dev),
    *[(lambda fn: lambda x, y, dev: fn(x, y, 6, device=dev))(fn) for fn in MEASURES],
])
def test_every_measure_refuses_an_unknown_device(call):
    x, y = _clusters()
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        call(x, y, "tpu")


# ---------------------------------------------------------------------------------------------- CPU unchanged
def test_device_cpu_is_the_default_bit_for_bit():
    x, y = _clusters()
    for fn in MEASURES:
        np.testing.assert_array_equal(fn(x, y, 6, device="cpu"), fn(x, y, 6))
        if not torch.cuda.is_available():   # "auto" is the CPU here
            np.testing.assert_array_equal(fn(x, y, 6, device="auto"), fn(x, y, 6))
    np.testing.assert_array_equal(difficulty.knn_loo_predictions(x, y, device="cpu"),
                                  difficulty.knn_loo_predictions(x, y))
    assert difficulty.class_difficulty_table(x, y, 6, device="cpu").equals(difficulty.class_difficulty_table(x, y, 6))
    np.testing.assert_array_equal(class_semantic_scales(x, y, device="cpu"), class_semantic_scales(x, y))
    assert semantic_scale(x[:40], device="cpu") == semantic_scale(x[:40])
    assert quantify_imbalance(x, y, device="cpu").equals(quantify_imbalance(x, y))


def test_the_table_passes_its_device_to_measures_that_take_one():
    x, y = _clusters()
    seen = []
    table = difficulty.class_difficulty_table(x, y, 6, device="cpu", measures={
        "with": lambda f, l, c, *, device: seen.append(device) or np.zeros(c),
        "without": lambda f, l, c: np.ones(c)})
    assert seen == ["cpu"] and table["without"].eq(1).all()


def test_chunks_on_the_cpu_are_todays():
    assert neighbours.chunk_elements(None) == neighbours.chunk_elements(torch.device("cpu")) == \
        neighbours.CHUNK_ELEMENTS == 1 << 23


def test_ieee_float32_restores_the_matmul_precision():
    before = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("high")
    try:
        with ieee_float32():
            assert torch.get_float32_matmul_precision() == "highest"
        assert torch.get_float32_matmul_precision() == "high"
    finally:
        torch.set_float32_matmul_precision(before)


# ---------------------------------------------------------------------------------------------- float32 vs float64
@pytest.mark.parametrize("s, rank, dims", [(0.5, 64, 64), (10.0, 30, 30), (3.0, 40, 200)])
def test_semantic_scale_float32_and_float64_against_the_closed_form(s, rank, dims):
    x, expected = _rotated_cross(s, rank, dims)
    labels = np.zeros(len(x), dtype=np.int64)
    assert class_semantic_scales(x, labels)[0] == pytest.approx(expected, rel=1e-10)
    # full-rank classes: float32 Gram within 1e-5 relative (measured ≤ 3e-7 on such inputs)
    assert class_semantic_scales(x, labels, dtype=torch.float32)[0] == pytest.approx(expected, rel=1e-5)
    assert class_semantic_scales(x, labels, dtype="float32")[0] == pytest.approx(expected, rel=1e-5)


def test_float32_gram_is_unsafe_for_nearly_low_rank_classes_so_float64_is_the_default():
    """A class spanning 10 of 512 dimensions (as collapsed trained features do): a float32 Gram puts round-off
    eigenvalues ε₃₂·λ_max on the 502 empty directions and S′ comes out > 5 % off (15.7 % measured: 103.6
    against 122.8 bits); float64 stays within 1e-6 of a float64 eigenvalue reference."""
    rng = np.random.default_rng(1)
    x = (rng.normal(size=(2000, 10)) * 10) @ rng.normal(size=(10, 512)) + 100
    labels = np.zeros(2000, dtype=np.int64)
    centred = x - x.mean(axis=0)
    reference = 0.5 * np.log2(1 + 512 / 2000 * np.clip(np.linalg.eigvalsh(centred.T @ centred), 0, None)).sum()
    exact = class_semantic_scales(x, labels)[0]
    assert exact == pytest.approx(reference, rel=1e-6)
    assert abs(class_semantic_scales(x, labels, dtype=torch.float32)[0] - exact) > 0.05 * exact


def test_dtype_other_than_float32_or_float64_is_refused():
    with pytest.raises(ValueError, match="dtype"):
        class_semantic_scales(*_clusters(), dtype=torch.float16)


def test_sample_volume_passes_device_and_dtype():
    images = np.random.default_rng(2).integers(0, 256, size=(60, 8, 8), dtype=np.uint8)
    labels = np.repeat(np.arange(3), 20)
    np.testing.assert_array_equal(sample_volume(images, labels, size=4, device="cpu"),
                                  sample_volume(images, labels, size=4))
    np.testing.assert_allclose(sample_volume(images, labels, size=4, dtype=torch.float32),
                               sample_volume(images, labels, size=4), rtol=1e-5)


# ---------------------------------------------------------------------------------------------- the device code path
@pytest.fixture
def device_path(monkeypatch):
    """Sends the measures down their GPU code path (tensors on a device) with CPU tensors."""
    monkeypatch.setattr(difficulty, "is_cpu", lambda device: False)


def test_the_device_path_equals_the_cpu_path(device_path):
    x, y = _clusters()
    for fn in MEASURES:
        np.testing.assert_allclose(fn(x, y, 6), _with_cpu(lambda: fn(x, y, 6)), rtol=1e-9, atol=1e-12)


def _with_cpu(call):
    patched = difficulty.is_cpu
    difficulty.is_cpu = lambda device: True
    try:
        return call()
    finally:
        difficulty.is_cpu = patched


def test_the_device_knn_equals_the_cpu_knn_with_ties_small_chunks_and_exact_redos(device_path, monkeypatch):
    """An 8 × 5 integer lattice, each point 30 times: distances tie everywhere (exact in float64 whatever the
    summation order), more points tie than the screening keeps as candidates, so rows are redone against all
    points, and index order must break the ties alike."""
    lattice = np.repeat(np.array([[i, j] for i in range(8) for j in range(5)], dtype=np.float64), 30, axis=0)
    labels = np.random.default_rng(3).integers(0, 4, len(lattice))
    monkeypatch.setattr(neighbours, "CHUNK_ELEMENTS", 4000)
    calls = []
    redo = neighbours._exact_neighbours
    monkeypatch.setattr(neighbours, "_exact_neighbours", lambda *a: calls.append(len(a[1])) or redo(*a))
    for k in (1, 4, 7):
        got = difficulty.knn_loo_predictions(lattice, labels, k=k)
        np.testing.assert_array_equal(got, _with_cpu(lambda: difficulty.knn_loo_predictions(lattice, labels, k=k)))
    assert sum(calls) > 0
    x, y = _clusters(seed=4)
    np.testing.assert_array_equal(difficulty.knn_loo_predictions(x, y, k=5),
                                  _with_cpu(lambda: difficulty.knn_loo_predictions(x, y, k=5)))


# ---------------------------------------------------------------------------------------------- CUDA
@needs_cuda
def test_cuda_measures_equal_the_cpu_ones():
    x, y = _clusters(dim=64)
    for fn in MEASURES:
        np.testing.assert_allclose(fn(x, y, 6, device="cuda"), fn(x, y, 6), rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(difficulty.knn_loo_predictions(x, y, device="cuda"),
                                  difficulty.knn_loo_predictions(x, y))
    np.testing.assert_allclose(class_semantic_scales(x, y, device="cuda"), class_semantic_scales(x, y), rtol=1e-9)
    np.testing.assert_allclose(class_semantic_scales(x, y, device="auto", dtype=torch.float32),
                               class_semantic_scales(x, y), rtol=1e-5)
    assert quantify_imbalance(x, y, device="cuda")["semantic_scale"].to_numpy() == \
        pytest.approx(quantify_imbalance(x, y)["semantic_scale"].to_numpy(), rel=1e-9)


@needs_cuda
def test_cuda_knn_exact_with_ties_even_when_tf32_is_on():
    lattice = np.array([[i, j] for i in range(40) for j in range(40)], dtype=np.float64)
    labels = np.random.default_rng(5).integers(0, 5, len(lattice))
    before = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("high")   # TF32 allowed: the screening must switch it off itself
    try:
        for k in (1, 5):
            np.testing.assert_array_equal(difficulty.knn_loo_predictions(lattice, labels, k=k, device="cuda"),
                                          difficulty.knn_loo_predictions(lattice, labels, k=k))
        assert torch.get_float32_matmul_precision() == "high"
    finally:
        torch.set_float32_matmul_precision(before)


@needs_cuda
def test_cuda_chunks_fill_the_gpu():
    assert neighbours.chunk_elements(torch.device("cuda")) >= neighbours.CHUNK_ELEMENTS
