"""Dynamic semantic-scale-balanced re-weighting: storage pool moments, stages, weights, cost, state, DDP gather."""
from __future__ import annotations

import math
from collections import deque

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from semscale_lib.dsb import DSBSettings, DynamicReweighting, StoragePool, gather_across_ranks
from semscale_lib.imbalance import quantify_imbalance
from semscale_lib.weights import dsb_class_weights
from semscale_lib.scale import class_semantic_scales, pool_features, semantic_scales_from_moments

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _batches(n_batches: int, *, classes: int = 3, dim: int = 16, seed: int = 0, sizes=(12, 20), spread=True):
    """Random (features (B, dim) float32, labels (B,)) mini-batches with varying B; class c has a shifted mean and
    its own spread, so the classes' semantic scales differ."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n_batches):
        b = int(torch.randint(sizes[0], sizes[1] + 1, (1,), generator=g))
        labels = torch.randint(0, classes, (b,), generator=g)
        scale = (1.0 + labels.to(torch.float32))[:, None] if spread else 1.0
        features = torch.randn(b, dim, generator=g) * scale + 0.5 * labels.to(torch.float32)[:, None]
        out.append((features, labels))
    return out


def _moments_from(features: torch.Tensor, labels: torch.Tensor, classes: int):
    z = features.to(torch.float64)
    counts = torch.bincount(labels, minlength=classes).to(torch.float64)
    sums = torch.zeros(classes, z.shape[1], dtype=torch.float64).index_add_(0, labels, z)
    outer = torch.zeros(classes, z.shape[1], z.shape[1], dtype=torch.float64)
    for c in range(classes):
        zc = z[labels == c]
        outer[c] = zc.T @ zc
    return counts, sums, outer


def _stored(pool: StoragePool):
    if pool.mode == "fifo":
        return torch.cat([f for f, _ in pool.batches]), torch.cat([l for _, l in pool.batches])
    filled = pool.table_labels >= 0
    return pool.table[filled], pool.table_labels[filled]


def _assert_moments_match(pool: StoragePool, classes: int):
    features, labels = _stored(pool)
    counts, sums, outer = _moments_from(features, labels, classes)
    torch.testing.assert_close(pool.counts, counts, rtol=0, atol=0)
    torch.testing.assert_close(pool.sums, sums, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(pool.outer, outer, rtol=1e-9, atol=1e-9)


# ---------------------------------------------------------------------------------------------------- FIFO pool
def test_fifo_stage1_keeps_every_batch_then_each_push_drops_the_oldest():
    data = _batches(10, dim=4)
    pool = StoragePool(3, dim=None, mode="fifo")
    for f, l in data[:4]:
        pool.push(f, l, dequeue=False)
    assert len(pool.batches) == 4
    assert len(pool) == sum(len(l) for _, l in data[:4])
    for k in range(4, 10):
        pool.push(*data[k], dequeue=True)
        assert len(pool.batches) == 4
        window = data[k - 3:k + 1]
        for (stored_f, stored_l), (f, l) in zip(pool.batches, window):
            assert torch.equal(stored_f, f) and torch.equal(stored_l, l)
        assert len(pool) == sum(len(l) for _, l in window)


def test_fifo_moments_match_stored_features_after_many_cycles():
    data = _batches(260, dim=8, seed=1, sizes=(1, 24))
    pool = StoragePool(3, dim=None, mode="fifo")
    for f, l in data[:30]:
        pool.push(f * 3 + 5, l, dequeue=False)
    for f, l in data[30:]:
        pool.push(f * 3 + 5, l, dequeue=True)
    assert len(pool.batches) == 30
    _assert_moments_match(pool, 3)
    before = (pool.counts.clone(), pool.sums.clone(), pool.outer.clone())
    pool.rebuild()
    _assert_moments_match(pool, 3)
    torch.testing.assert_close(pool.sums, before[1], rtol=1e-9, atol=1e-9)


def test_fifo_scales_and_centres_equal_the_batch_computation_on_pooled_features():
    data = _batches(12, dim=16, seed=2)
    pool = StoragePool(3, dim=4, mode="fifo")
    for f, l in data[:5]:
        pool.push(f, l, dequeue=False)
    for f, l in data[5:]:
        pool.push(f, l)
    raw = torch.cat([f for f, _ in data[-5:]])                # the last 5 batches are what the pool holds
    labels = torch.cat([l for _, l in data[-5:]])
    assert torch.bincount(labels, minlength=3).min() >= 2
    features, stored_labels = _stored(pool)
    assert features.shape[1] == 4 and torch.equal(stored_labels, labels)
    torch.testing.assert_close(features, pool_features(raw, 4))
    expected = class_semantic_scales(pool_features(raw, 4).numpy(), labels.numpy(), num_classes=3)
    np.testing.assert_allclose(pool.semantic_scales().numpy(), expected, rtol=1e-9)
    means = np.stack([pool_features(raw, 4).numpy()[labels.numpy() == c].astype(np.float64).mean(0)
                      for c in range(3)])
    np.testing.assert_allclose(pool.centres().numpy(), means, rtol=1e-9, atol=1e-12)
    # eps is passed on: S'(eps) = ½ log₂ det(I + d/(m eps²) scatter)
    np.testing.assert_allclose(pool.semantic_scales(eps=3.0).numpy(),
                               class_semantic_scales(features.numpy(), labels.numpy(), eps=3.0), rtol=1e-9)


def test_pool_rejects_bad_input():
    with pytest.raises(ValueError, match="fifo, per-sample"):
        StoragePool(3, mode="ring")
    with pytest.raises(ValueError, match="dataset_size"):
        StoragePool(3, mode="per-sample")
    pool = StoragePool(3, dim=None)
    with pytest.raises(ValueError, match="empty"):
        pool.semantic_scales()
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        pool.push(torch.randn(2, 4), torch.tensor([0, 3]))
    per_sample = StoragePool(3, dim=None, mode="per-sample", dataset_size=10)
    with pytest.raises(ValueError, match="indices"):
        per_sample.push(torch.randn(2, 4), torch.tensor([0, 1]))


# ----------------------------------------------------------------------------------------------- per-sample pool
def test_per_sample_pool_keeps_the_latest_feature_of_each_index():
    pool = StoragePool(2, dim=None, mode="per-sample", dataset_size=10)
    first = torch.arange(12, dtype=torch.float32).reshape(6, 2)
    pool.push(first, torch.tensor([0, 1, 0, 1, 0, 1]), indices=torch.arange(6))
    assert len(pool) == 6
    second = -torch.arange(8, dtype=torch.float32).reshape(4, 2) - 1
    pool.push(second, torch.tensor([1, 1, 0, 0]), indices=torch.tensor([4, 5, 6, 7]))
    assert len(pool) == 8
    assert torch.equal(pool.table[4], second[0]) and torch.equal(pool.table[5], second[1])
    assert torch.equal(pool.table[3], first[3])
    assert pool.table_labels.tolist() == [0, 1, 0, 1, 1, 1, 0, 0, -1, -1]
    _assert_moments_match(pool, 2)


def test_per_sample_moments_match_the_table_after_many_overwrites():
    g = torch.Generator().manual_seed(4)
    n = 50
    true_labels = torch.randint(0, 4, (n,), generator=g)
    pool = StoragePool(4, dim=None, mode="per-sample", dataset_size=n)
    for _ in range(120):
        idx = torch.randperm(n, generator=g)[:int(torch.randint(1, 20, (1,), generator=g))]
        pool.push(torch.randn(len(idx), 6, generator=g) * 2 + 1, true_labels[idx], indices=idx)
    _assert_moments_match(pool, 4)
    filled = pool.table_labels >= 0
    assert torch.equal(pool.table_labels[filled], true_labels[filled])
    features, labels = _stored(pool)
    np.testing.assert_allclose(pool.semantic_scales().numpy(),
                               class_semantic_scales(features.numpy(), labels.numpy(), num_classes=4), rtol=1e-9)


# ------------------------------------------------------------------------------------------- DynamicReweighting
def _settings(**kw) -> DSBSettings:
    base = dict(stage_epochs=2, alpha=2.0, pool_dim=4, refresh_every=1, normalize="sum1")
    base.update(kw)
    return DSBSettings(**base)


def _drive(dsb: DynamicReweighting, data, epochs: int, per_epoch: int):
    """Feed ``per_epoch`` batches per epoch; returns [(epoch, iteration, result or None)]."""
    results, k = [], 0
    for epoch in range(1, epochs + 1):
        for _ in range(per_epoch):
            f, l = data[k % len(data)]
            results.append((epoch, dsb.iteration + 1, dsb.step(epoch, f, l)))
            k += 1
    return results


def test_weights_only_after_stage_n():
    data = _batches(20, seed=5)
    dsb = DynamicReweighting(3, _settings(stage_epochs=2), dataset_size=1000)
    results = _drive(dsb, data, epochs=4, per_epoch=5)
    for epoch, _, result in results:
        assert (result is None) == (epoch <= 2), f"epoch {epoch}"
    assert dsb.iteration == 20
    assert not dsb.reweighting(2) and dsb.reweighting(3)
    with pytest.raises(ValueError, match="stage_epochs"):
        DynamicReweighting(3, _settings(stage_epochs=0), dataset_size=10)
    with pytest.raises(ValueError, match="refresh_every"):
        DynamicReweighting(3, _settings(refresh_every=0), dataset_size=10)


@pytest.mark.parametrize("k", [1, 3, 4])
def test_refresh_every_k_iterations(k):
    data = _batches(20, seed=6)
    dsb = DynamicReweighting(3, _settings(stage_epochs=1, refresh_every=k), dataset_size=1000)
    results = _drive(dsb, data, epochs=3, per_epoch=7)
    refreshed = [it for epoch, it, r in results if r is not None]
    stage3 = [it for epoch, it, _ in results if epoch > 1]
    assert refreshed == [it for it in stage3 if (it - 1) % k == 0]
    assert all(b - a == k for a, b in zip(refreshed, refreshed[1:]))
    assert len(refreshed) == len([i for i in range(len(stage3)) if (stage3[0] + i - 1) % k == 0])


@pytest.mark.parametrize("mode", ["fifo", "per-sample"])
@pytest.mark.parametrize("alpha", [1.0, 2.0])
def test_scales_equal_an_independent_recomputation(mode, alpha):
    data = _batches(16, seed=7, dim=16)
    n = 16 * 20
    dsb = DynamicReweighting(3, _settings(stage_epochs=1, alpha=alpha, pool=mode), dataset_size=n)
    offset, result = 0, None
    for i, (f, l) in enumerate(data):
        idx = torch.arange(offset, offset + len(l)) % n
        offset += len(l)
        result = dsb.step(1 if i < 8 else 2, f, l, idx)
    scales = result
    weights = dsb_class_weights(scales, "sum1")
    features, labels = _stored(dsb.pool)
    table = quantify_imbalance(features.numpy(), labels.numpy(), alpha=alpha, num_classes=3)
    s = table["imbalance_scale"].to_numpy()
    np.testing.assert_allclose(scales.numpy(), s, rtol=1e-9)
    assert scales.dtype == torch.float64
    assert weights.dtype == torch.float64
    assert math.isclose(float(weights.sum()), 1.0, rel_tol=1e-12)
    # a ∝ 1/S: the class with the largest semantic scale gets the smallest weight
    assert int(weights.argmin()) == int(np.argmax(s)) and int(weights.argmax()) == int(np.argmin(s))


@pytest.mark.parametrize("mode", ["fifo", "per-sample"])
@pytest.mark.parametrize("target, column", [("S'", "semantic_scale"), ("W", "interclass")])
def test_other_targets_equal_their_column_of_an_independent_recomputation(mode, target, column):
    """target S′ or W (ours, notebook 06): q is that column of quantify_imbalance on the stored features."""
    data = _batches(16, seed=7, dim=16)
    n = 16 * 20
    dsb = DynamicReweighting(3, _settings(stage_epochs=1, alpha=2.0, pool=mode, target=target), dataset_size=n)
    offset, q = 0, None
    for i, (f, l) in enumerate(data):
        idx = torch.arange(offset, offset + len(l)) % n
        offset += len(l)
        q = dsb.step(1 if i < 8 else 2, f, l, idx)
    features, labels = _stored(dsb.pool)
    table = quantify_imbalance(features.numpy(), labels.numpy(), alpha=2.0, num_classes=3)
    np.testing.assert_allclose(q.numpy(), table[column].to_numpy(), rtol=1e-9)
    stored_features, stored_labels = dsb.pool.stored()
    assert torch.equal(stored_features, features) and torch.equal(stored_labels, labels)


def test_a_difficulty_measure_target_is_computed_on_the_stored_features():
    from semscale_lib.difficulty import DIFFICULTY_MEASURES

    data = _batches(10, seed=3, dim=16)
    dsb = DynamicReweighting(3, _settings(stage_epochs=1, target="knn_accuracy"), dataset_size=1000)
    q = None
    for i, (f, l) in enumerate(data):
        q = dsb.step(1 if i < 5 else 2, f, l)
    features, labels = dsb.pool.stored()
    expected = np.asarray(DIFFICULTY_MEASURES["knn_accuracy"](features, labels, 3), dtype=np.float64)
    usable = expected > 0
    np.testing.assert_allclose(q.numpy()[usable], expected[usable], rtol=1e-12)
    assert torch.all(q > 0)


def test_unknown_target_is_refused_with_the_valid_names():
    with pytest.raises(ValueError, match="unknown DSB target 'accuracy'.*S'.*knn_accuracy"):
        _settings(target="accuracy")


def test_class_with_fewer_than_two_stored_samples_gets_the_smallest_scale():
    g = torch.Generator().manual_seed(9)
    dsb = DynamicReweighting(3, _settings(stage_epochs=1, pool_dim=None), dataset_size=100)
    labels = torch.tensor([0] * 10 + [1] * 10 + [2])
    scales = dsb.step(2, torch.randn(21, 5, generator=g), labels)
    assert torch.all(scales > 0)
    assert float(scales[2]) == float(scales[:2].min())


def test_a_class_whose_scatter_fails_the_cholesky_gets_the_smallest_scale():
    """Round-off can make a scatter from running sums fail the Cholesky factorisation; its exact fallback
    (eigenvalues) would make the host wait for the device at every refresh, so the pool gives that class S′ = 0
    instead, which the refresh treats like a class with < 2 samples."""
    g = torch.Generator().manual_seed(9)
    dsb = DynamicReweighting(3, _settings(stage_epochs=1, pool_dim=None), dataset_size=100)
    labels = torch.arange(30) % 3
    fine = dsb.step(2, torch.randn(30, 5, generator=g) * (1.0 + labels[:, None]), labels)
    dsb.pool.outer[2] -= 1e3 * torch.eye(5, dtype=torch.float64)       # a scatter far from PSD
    scales = dsb.pool.semantic_scales()
    assert scales[2] == 0 and torch.equal(scales[:2], semantic_scales_from_moments(
        dsb.pool.counts, dsb.pool.sums, dsb.pool.outer)[:2])
    q = dsb.current_scales()
    assert torch.all(q > 0) and q[2] == q[:2].min() and torch.isfinite(fine).all()


class _Untouchable:
    """Stands in for the stored features: any use fails the test."""

    def __getattr__(self, name):
        raise AssertionError(f"current_scales touched the stored features ({name})")

    def __iter__(self):
        raise AssertionError("current_scales iterated over the stored features")

    def __len__(self):
        raise AssertionError("current_scales asked for the number of stored batches")

    def __getitem__(self, item):
        raise AssertionError("current_scales indexed the stored features")


@pytest.mark.parametrize("mode", ["fifo", "per-sample"])
def test_refresh_reads_only_the_moments_not_the_stored_features(mode, monkeypatch):
    """The O(C·d³) property: a refresh never passes over the N stored features."""
    data = _batches(10, seed=10)
    dsb = DynamicReweighting(3, _settings(stage_epochs=1, pool=mode), dataset_size=400)
    offset = 0
    for i, (f, l) in enumerate(data):
        dsb.step(1 if i < 5 else 2, f, l, torch.arange(offset, offset + len(l)))
        offset += len(l)
    scales = dsb.current_scales()
    monkeypatch.setattr(dsb.pool, "batches", _Untouchable())
    monkeypatch.setattr(dsb.pool, "table", _Untouchable())
    monkeypatch.setattr(dsb.pool, "table_labels", _Untouchable())
    assert torch.equal(dsb.current_scales(), scales)
    # and with the stored features really gone, the scales are still those of the moments
    monkeypatch.setattr(dsb.pool, "batches", deque())
    monkeypatch.setattr(dsb.pool, "table", None)
    assert torch.equal(dsb.current_scales(), scales)


@pytest.mark.parametrize("mode", ["fifo", "per-sample"])
def test_state_dict_round_trip(mode):
    data = _batches(30, seed=11)
    settings = _settings(stage_epochs=1, pool=mode, refresh_every=2)
    dsb = DynamicReweighting(3, settings, dataset_size=600)
    offset = 0

    def feed(target, batches, epoch):
        nonlocal offset
        results = []
        for f, l in batches:
            results.append(target.step(epoch, f, l, torch.arange(offset, offset + len(l)) % 600))
            offset += len(l)
        return results

    feed(dsb, data[:6], 1)
    feed(dsb, data[6:15], 2)
    dsb.pool.rebuild()                       # the trainer rebuilds at the end of every epoch, before saving
    state = dsb.state_dict()
    copy = DynamicReweighting(3, settings, dataset_size=600)
    copy.load_state_dict(state)
    assert copy.iteration == dsb.iteration == 15
    assert torch.equal(copy.current_scales(), dsb.current_scales())
    for name in ("counts", "sums", "outer"):
        assert torch.equal(getattr(copy.pool, name), getattr(dsb.pool, name))
    start = offset
    original = feed(dsb, data[15:], 3)
    offset = start
    resumed = feed(copy, data[15:], 3)
    assert [r is None for r in original] == [r is None for r in resumed]
    for a, b in zip(original, resumed):
        if a is not None:
            assert torch.equal(a, b)
    other = DynamicReweighting(3, _settings(pool_dim=8, pool=mode), dataset_size=600)
    with pytest.raises(ValueError, match="dim"):
        other.load_state_dict(state)


# ------------------------------------------------------------------------------------------------ distributed
WORLD = 2
DIST_CLASSES = 4
DIST_N = 200


def _dist_plan():
    """[(epoch, features (B, 8), labels (B,), indices (B,), rank-0 share)] — unequal shares, a short last batch."""
    g = torch.Generator().manual_seed(12)
    plan, cursor = [], 0
    sizes = [16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 7]     # 7 = a short last batch, split 4 / 3
    for epoch in (1, 2, 3):
        for j, b in enumerate(sizes):
            labels = torch.randint(0, DIST_CLASSES, (b,), generator=g)
            features = torch.randn(b, 8, generator=g) * (1 + labels[:, None]) + labels[:, None]
            indices = (torch.arange(cursor, cursor + b)) % DIST_N
            cursor += b
            share = (b + 1) // 2 if j % 3 else b - 3      # 8 / 8, 4 / 3, and unequal 13 / 3
            plan.append((epoch, features, labels, indices, share))
    return plan


def _dist_settings(mode: str) -> DSBSettings:
    return DSBSettings(stage_epochs=1, alpha=2.0, pool=mode, pool_dim=4, refresh_every=1, normalize="sum1")


def _dist_run(plan, rank: int | None):
    """Scales S of both pool modes along the plan; ``rank`` None = single process fed the whole batches."""
    out = {}
    for mode in ("fifo", "per-sample"):
        dsb = DynamicReweighting(DIST_CLASSES, _dist_settings(mode), dataset_size=DIST_N)
        results = []
        for epoch, f, l, idx, share in plan:
            part = slice(None) if rank is None else (slice(0, share) if rank == 0 else slice(share, None))
            r = dsb.step(epoch, f[part], l[part], idx[part])
            results.append(None if r is None else r.clone())
        out[mode] = {"results": results, "counts": dsb.pool.counts.clone(), "size": len(dsb.pool)}
    return out


def _dist_worker(rank: int, init_file: str, out_dir: str):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD)
    try:
        # gather_across_ranks itself: rank order, unequal sizes padded and trimmed
        mine = torch.arange(3 + 2 * rank, dtype=torch.float32)[:, None].repeat(1, 2) + 100 * rank
        f, l, i = gather_across_ranks(mine, torch.full((len(mine),), rank), torch.arange(len(mine)) + 10 * rank)
        torch.save({"gathered": (f, l, i), "runs": _dist_run(_dist_plan(), rank)}, f"{out_dir}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_distributed_scales_equal_single_process(tmp_path):
    mp.spawn(_dist_worker, args=(str(tmp_path / "init"), str(tmp_path)), nprocs=WORLD, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in range(WORLD)]
    # gather: rank 0's 3 rows then rank 1's 5 rows, on both ranks
    for saved in ranks:
        f, l, i = saved["gathered"]
        assert l.tolist() == [0] * 3 + [1] * 5
        assert i.tolist() == [0, 1, 2, 10, 11, 12, 13, 14]
        assert f[:, 0].tolist() == [0, 1, 2, 100, 101, 102, 103, 104]
    single = _dist_run(_dist_plan(), None)
    for mode in ("fifo", "per-sample"):
        r0, r1, ref = ranks[0]["runs"][mode], ranks[1]["runs"][mode], single[mode]
        assert r0["size"] == r1["size"] == ref["size"]
        assert torch.equal(r0["counts"], ref["counts"]) and torch.equal(r1["counts"], ref["counts"])
        refreshes = 0
        for a, b, c in zip(r0["results"], r1["results"], ref["results"]):
            assert (a is None) == (b is None) == (c is None)
            if a is None:
                continue
            refreshes += 1
            assert torch.equal(a, b), f"{mode}: ranks disagree"
            torch.testing.assert_close(a, c, rtol=1e-12, atol=0)
        assert refreshes == 24


def test_gather_without_process_group_is_the_identity():
    f, l = torch.randn(3, 2), torch.tensor([0, 1, 2])
    out = gather_across_ranks(f, l, None)
    assert out[0] is f and out[1] is l and out[2] is None
