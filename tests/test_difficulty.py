"""Per-class difficulty measures (semscale_lib.difficulty) against hand-computed answers and scikit-learn."""
import math

import numpy as np
import pytest
import torch
from sklearn.metrics import silhouette_samples
from sklearn.model_selection import LeaveOneOut, cross_val_predict
from sklearn.neighbors import KNeighborsClassifier

from semscale_lib import neighbours
from semscale_lib.difficulty import (
    DIFFICULTY_MEASURES,
    class_difficulty_table,
    effective_rank,
    fisher_ratio,
    knn_accuracy,
    knn_loo_predictions,
    nearest_centre_distance,
    silhouette,
)


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    yield


def two_clusters(n_a=6, n_b=8, gap=100.0):
    """Class 0: n_a points on a unit circle at the origin; class 1: n_b points on a unit circle at (gap, 0)."""
    ta, tb = np.linspace(0, 2 * np.pi, n_a, endpoint=False), np.linspace(0, 2 * np.pi, n_b, endpoint=False)
    a = np.column_stack([np.cos(ta), np.sin(ta)])
    b = np.column_stack([gap + np.cos(tb), np.sin(tb)])
    return np.vstack([a, b]), np.array([0] * n_a + [1] * n_b)


def three_classes_closed_form():
    """Class 0: (±1, 0) → mean (0, 0), tr Σ = 1; class 1: (10 ± 2, 0) → mean (10, 0), tr Σ = 4;
    class 2: (0, 100 ± 3) → mean (0, 100), tr Σ = 9."""
    x = np.array([[-1, 0], [1, 0], [8, 0], [12, 0], [0, 97], [0, 103]], dtype=float)
    return x, np.array([0, 0, 1, 1, 2, 2])


def brute_force_knn(x, y, k):
    """Reference: full float64 distance matrix by direct differences, ranked by (distance, index), vote rule."""
    d = ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)
    preds = []
    for i in range(len(x)):
        others = np.delete(np.arange(len(x)), i)
        ranked = others[np.lexsort((others, d[i, others]))][:k]
        labels = y[ranked]
        counts = {lab: int((labels == lab).sum()) for lab in labels}
        best = max(counts.values())
        preds.append(next(lab for lab in labels if counts[lab] == best))
    return np.array(preds)


# ---------------------------------------------------------------------------------------------------------------
# k-NN accuracy
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("k", [1, 3, 5])
def test_knn_well_separated_clusters_are_perfect(k):
    x, y = two_clusters()
    np.testing.assert_array_equal(knn_accuracy(x, y, 2, k=k), [1.0, 1.0])


def test_knn_one_intruder_costs_exactly_one_point():
    # one extra class-0 point at the centre of class 1's circle: its 5 nearest are all class 1 → wrong;
    # every other class-0 point has its 5 other class-0 points as nearest → right; class 1 votes at worst 4:1 → right
    x, y = two_clusters(n_a=6, n_b=8)
    x, y = np.vstack([x, [[100.0, 0.0]]]), np.append(y, 0)
    np.testing.assert_allclose(knn_accuracy(x, y, 2, k=5), [6 / 7, 1.0], rtol=0, atol=1e-15)
    assert knn_loo_predictions(x, y, k=5)[-1] == 1


def test_knn_vote_ties_go_to_the_nearest_tied_label():
    # k = 2 on a line: 0 (label 0), 1 (label 1), 2.5 (label 0)
    x, y = np.array([[0.0], [1.0], [2.5]]), np.array([0, 1, 0])
    # point 0: neighbours 1 (d 1, label 1), 2 (d 2.5, label 0) → 1:1 tie → nearest's label 1
    # point 1: neighbours 0 (label 0), 2 (label 0) → 0;  point 2: 1 (d 1.5, label 1), 0 (d 2.5, label 0) → 1
    np.testing.assert_array_equal(knn_loo_predictions(x, y, k=2), [1, 0, 1])
    # k = 5, query at 0 with neighbours labelled A, B, B, C, C (nearest first): B and C tie, the nearest (A) is not
    # among them → the tied label met first, B
    x = np.array([[0.0], [1.0], [2.0], [3.0], [4.0], [5.0]])
    y = np.array([3, 0, 1, 1, 2, 2])
    assert knn_loo_predictions(x, y, k=5)[0] == 1


def test_knn_duplicates_of_a_point_are_neighbours_but_the_point_is_not():
    x = np.array([[0.0], [0.0], [5.0], [5.1]])
    y = np.array([0, 0, 1, 1])
    np.testing.assert_array_equal(knn_loo_predictions(x, y, k=1), [0, 0, 1, 1])


@pytest.mark.parametrize("k,n_classes", [(1, 3), (5, 2)])
def test_knn_matches_sklearn_leave_one_out(k, n_classes):
    # 2 classes with odd k, or k = 1: no vote ties, where sklearn's rule (smallest label) would differ from ours
    rng = np.random.default_rng(k)
    y = rng.integers(0, n_classes, 120)
    x = rng.normal(size=(120, 4)) + 0.8 * y[:, None]
    expected_pred = cross_val_predict(KNeighborsClassifier(n_neighbors=k), x, y, cv=LeaveOneOut())
    np.testing.assert_array_equal(knn_loo_predictions(x, y, k=k), expected_pred)
    expected = np.bincount(y, weights=expected_pred == y, minlength=n_classes) / np.bincount(y)
    np.testing.assert_allclose(knn_accuracy(x, y, n_classes, k=k), expected, rtol=0, atol=1e-15)


def test_knn_matches_sklearn_where_votes_are_not_tied():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 4, 400)
    x = rng.normal(size=(400, 6)) + 0.5 * y[:, None]
    clf = KNeighborsClassifier(n_neighbors=5).fit(x, y)
    neighbours = clf.kneighbors(None, return_distance=False)  # X=None: each point's neighbours exclude itself
    votes = np.stack([np.bincount(y[row], minlength=4) for row in neighbours])
    untied = (votes == votes.max(axis=1, keepdims=True)).sum(axis=1) == 1
    assert untied.sum() > 300
    ours = knn_loo_predictions(x, y, k=5)
    np.testing.assert_array_equal(ours[untied], clf.predict(None)[untied])


def test_knn_is_exact_on_tied_lattice_data_across_chunks(monkeypatch):
    # integer grid with repeated points: many equal distances, so the screening cannot settle the order alone and the
    # exact fallback must run; tiny chunks exercise the row chunking
    rng = np.random.default_rng(0)
    x = rng.integers(0, 4, size=(90, 2)).astype(float)
    y = rng.integers(0, 3, 90)
    expected = brute_force_knn(x, y, 3)
    monkeypatch.setattr(neighbours, "CHUNK_ELEMENTS", 200)
    np.testing.assert_array_equal(knn_loo_predictions(x, y, k=3), expected)


def test_knn_ties_beyond_the_screened_candidates_are_ranked_by_index(monkeypatch):
    # origin plus ±e_i in 30-d: the origin's 60 neighbours are all at distance 1, each ±e_i has 58 at distance √2 —
    # more tied points than screened candidates, so every row takes the exact fallback; labels vary along the index
    d = 30
    x = np.vstack([np.zeros((1, d)), np.eye(d), -np.eye(d)])
    y = (np.arange(len(x)) * 7 // 5) % 3
    calls = []
    exact_order = neighbours._exact_order
    monkeypatch.setattr(neighbours, "_exact_order", lambda *a: calls.append(1) or exact_order(*a))
    for k in (1, 4):
        np.testing.assert_array_equal(knn_loo_predictions(x, y, k=k), brute_force_knn(x, y, k))
    assert len(calls) > 0


def test_knn_chunking_does_not_change_the_answer(monkeypatch):
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(200, 8)), rng.integers(0, 5, 200)
    whole = knn_accuracy(x, y, 5, k=5)
    monkeypatch.setattr(neighbours, "CHUNK_ELEMENTS", 500)
    np.testing.assert_array_equal(knn_accuracy(x, y, 5, k=5), whole)
    np.testing.assert_array_equal(knn_loo_predictions(x, y, k=5), brute_force_knn(x, y, 5))


def test_knn_with_too_few_points():
    x, y = np.array([[0.0], [1.0], [2.0]]), np.array([0, 1, 1])
    assert np.isnan(knn_accuracy(x, y, 2, k=5)).all()
    with pytest.raises(ValueError, match="k"):
        knn_loo_predictions(x, y, k=5)
    with pytest.raises(ValueError, match="k"):
        knn_accuracy(x, y, 2, k=0)


# ---------------------------------------------------------------------------------------------------------------
# centre-based measures
# ---------------------------------------------------------------------------------------------------------------
def test_fisher_ratio_closed_form():
    x, y = three_classes_closed_form()
    # class 0 ↔ 1: 10² / (1 + 4) = 20 both ways; class 2's nearest is class 0 (100 < √10100): 100² / (9 + 1)
    np.testing.assert_allclose(fisher_ratio(x, y, 3), [20.0, 20.0, 1000.0], rtol=1e-14)


def test_nearest_centre_closed_form():
    x, y = three_classes_closed_form()
    # distances 10, 10, 100 over RMS radii 1, 2, 3
    np.testing.assert_allclose(nearest_centre_distance(x, y, 3), [10.0, 5.0, 100 / 3], rtol=1e-14)


def test_centre_measures_are_invariant_to_scale_rotation_and_shift():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 6, 300)
    x = rng.normal(size=(300, 5)) + rng.normal(size=(6, 5))[y] * 2
    rotation, _ = np.linalg.qr(rng.normal(size=(5, 5)))
    moved = 37.5 * x @ rotation + rng.normal(size=5) * 10
    for fn in (nearest_centre_distance, fisher_ratio):
        np.testing.assert_allclose(fn(moved, y, 6), fn(x, y, 6), rtol=1e-10)
    np.testing.assert_allclose(nearest_centre_distance(1e-3 * x, y, 6), nearest_centre_distance(x, y, 6),
                               rtol=1e-12)


def test_collapsed_classes_give_inf_not_an_error():
    x = np.array([[0.0, 0.0], [0.0, 0.0], [3.0, 4.0], [3.0, 4.0]])
    y = np.array([0, 0, 1, 1])
    np.testing.assert_array_equal(nearest_centre_distance(x, y, 2), [np.inf, np.inf])
    np.testing.assert_array_equal(fisher_ratio(x, y, 2), [np.inf, np.inf])


# ---------------------------------------------------------------------------------------------------------------
# effective rank, silhouette
# ---------------------------------------------------------------------------------------------------------------
def test_effective_rank_known_values():
    d = 5
    iso = np.vstack([np.eye(d), -np.eye(d)])                          # ±e_i: covariance I/d → erank d
    line = np.outer(np.arange(7.0), [1.0, 2.0, -1.0, 0.5, 3.0])       # on a line → 1
    a, b = 1.0, 2.0                                                   # ±a e1, ±b e2: λ ∝ (a², b²)
    plane = np.array([[a, 0, 0, 0, 0], [-a, 0, 0, 0, 0], [0, b, 0, 0, 0], [0, -b, 0, 0, 0]])
    x = np.vstack([iso, line, plane])
    y = np.array([0] * 10 + [1] * 7 + [2] * 4)
    p = np.array([a**2, b**2]) / (a**2 + b**2)
    np.testing.assert_allclose(effective_rank(x, y, 3), [d, 1.0, math.exp(-(p * np.log(p)).sum())], rtol=1e-12)


def test_effective_rank_identical_points_is_nan():
    x = np.array([[1.0, 2.0], [1.0, 2.0], [0.0, 0.0], [1.0, 1.0]])
    assert np.isnan(effective_rank(x, np.array([0, 0, 1, 1]), 2)[0])


def test_silhouette_matches_sklearn():
    rng = np.random.default_rng(4)
    y = rng.integers(0, 4, 250)
    x = rng.normal(size=(250, 3)) + y[:, None]
    expected = np.bincount(y, weights=silhouette_samples(x, y)) / np.bincount(y)
    np.testing.assert_allclose(silhouette(x, y, 4), expected, rtol=1e-9, atol=1e-12)


def test_silhouette_chunked(monkeypatch):
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(120, 3)), rng.integers(0, 3, 120)
    whole = silhouette(x, y, 3)
    monkeypatch.setattr(neighbours, "CHUNK_ELEMENTS", 300)
    np.testing.assert_allclose(silhouette(x, y, 3), whole, rtol=1e-12, atol=1e-14)


# ---------------------------------------------------------------------------------------------------------------
# registry, table, input handling
# ---------------------------------------------------------------------------------------------------------------
def test_table_columns_and_small_classes_are_nan():
    x, y = three_classes_closed_form()
    x = np.vstack([x, [[50.0, 50.0]]])
    y = np.append(y, 3)                              # class 3: one point; class 4: empty
    table = class_difficulty_table(x, y, 5)
    assert list(table.columns) == ["class", *DIFFICULTY_MEASURES]
    assert set(DIFFICULTY_MEASURES) >= {"knn_accuracy", "fisher_ratio", "nearest_centre", "effective_rank"}
    np.testing.assert_array_equal(table["class"], np.arange(5))
    assert table.iloc[3:, 1:].isna().all().all()
    assert table.attrs["counts"] == [2, 2, 2, 1, 0]
    np.testing.assert_allclose(table["fisher_ratio"][:3], fisher_ratio(x, y, 5)[:3])
    sub = class_difficulty_table(x, y, 5, measures=["nearest_centre", "knn_accuracy"])
    assert list(sub.columns) == ["class", "nearest_centre", "knn_accuracy"]
    custom = class_difficulty_table(x, y, 5, measures={"spread": effective_rank})
    assert list(custom.columns) == ["class", "spread"]
    with pytest.raises(ValueError, match="measures"):
        class_difficulty_table(x, y, 5, measures=["nope"])


def test_one_class_only_gives_nan_for_comparative_measures():
    x, y = np.random.default_rng(0).normal(size=(10, 2)), np.zeros(10, dtype=int)
    table = class_difficulty_table(x, y, 1)
    assert table["knn_accuracy"][0] == 1.0
    assert table[["fisher_ratio", "nearest_centre", "silhouette"]].isna().all().all()


@pytest.mark.parametrize("name", list(DIFFICULTY_MEASURES))
def test_torch_tensors_give_the_numpy_answer(name):
    rng = np.random.default_rng(6)
    y = rng.integers(0, 3, 60)
    x = (rng.normal(size=(60, 4)) + y[:, None]).astype(np.float32)
    fn = DIFFICULTY_MEASURES[name]
    expected = fn(x, y, 3)
    got = fn(torch.from_numpy(x), torch.from_numpy(y), 3)
    assert got.dtype == np.float64 and got.shape == (3,)
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    if torch.cuda.is_available():
        np.testing.assert_allclose(fn(torch.from_numpy(x).cuda(), torch.from_numpy(y).cuda(), 3), expected,
                                   rtol=1e-12)


@pytest.mark.parametrize("features,labels,num_classes,error,match", [
    (None, [0, 1], 2, TypeError, "features"),
    ("abc", [0, 1], 2, TypeError, "features"),
    (np.ones((2, 2), dtype=complex), [0, 1], 2, TypeError, "features"),
    (np.ones(4), [0, 1, 0, 1], 2, ValueError, "features"),
    (np.array([[0.0, np.nan], [1.0, 1.0]]), [0, 1], 2, ValueError, "features"),
    (np.array([[0.0, np.inf], [1.0, 1.0]]), [0, 1], 2, ValueError, "features"),
    (np.ones((2, 2)), None, 2, TypeError, "labels"),
    (np.ones((2, 2)), [0, 2], 2, ValueError, "label"),
    (np.ones((2, 2)), [0, -1], 2, ValueError, "label"),
    (np.ones((2, 2)), [0.5, 1], 2, ValueError, "label"),
    (np.ones((2, 2)), [0, 1, 1], 2, ValueError, "labels"),
    (np.ones((2, 2)), [0, 1], 2.0, TypeError, "num_classes"),
    (np.ones((2, 2)), [0, 1], 0, ValueError, "num_classes"),
])
@pytest.mark.parametrize("fn", [class_difficulty_table, *DIFFICULTY_MEASURES.values()])
def test_bad_input_is_refused_by_name(fn, features, labels, num_classes, error, match):
    with pytest.raises(error, match=match):
        fn(features, labels, num_classes)
