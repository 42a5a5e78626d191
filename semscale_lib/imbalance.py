"""Semantic scale imbalance across classes (Sec. 3.4.1) and its correlation with per-class accuracy.

    S'_i ← S'_i / max_j S'_j                      (max-normalised semantic scale)
    w_i  = 1/(C−1) · Σ_j ‖o_i − o_j‖₂             (mean distance of class centre o_i to the others)
    W    = log₂(α + w / max w),  α ≥ 1            (inter-class term)
    S    = S' ⊙ W                                 (imbalance scale, "considering inter-class interference")

Class centres are the class means of the same vectors [ours: the paper does not say; see docs/paper-notes.md §5].
"""
from __future__ import annotations

import numbers
import warnings
from collections.abc import Mapping, Set
from typing import Sequence

import numpy as np
import pandas as pd
import torch
from scipy import stats

from .checks import require
from .verdicts import fisher_ci
from .scale import _as_float64_tensor, as_label_array, class_counts, class_semantic_scales, effective_number

TABLE1_ALPHAS = (1.0, 1.5, 2.0, 2.5, 3.0)
MAX_MAGNITUDE = 1e100   # [ours] |values| above this overflow float64 in the (d × d) scatter matrices (≈ d·x²)
TABLE_COLUMNS = ("count", "normalized_scale", "normalized_distance", "interclass")   # what correlate reads

UNDEFINED = "undefined"


class SingleSampleWarning(UserWarning):
    """Some class has a single sample: its S′ is 0 by definition (one vector spans no volume)."""


_KINDS = {"U": "strings", "S": "bytes", "O": "Python objects (mixed or ragged values)", "b": "booleans",
          "c": "complex numbers", "M": "dates", "m": "time spans", "V": "raw records"}


def _check_alpha(alpha: float) -> None:
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real):
        raise TypeError(f"alpha: expected a number ≥ 1 (Sec. 3.4.1), got {type(alpha).__name__} {alpha!r}")
    if not (np.isfinite(alpha) and alpha >= 1.0):
        raise ValueError(f"alpha must be ≥ 1 (Sec. 3.4.1), got {alpha!r}")


def _numeric_array(value, name: str, expected: str) -> np.ndarray:
    """``value`` as a numpy array of real numbers (int or float); TypeError naming ``name`` and ``expected``
    otherwise (a string, a mapping, a set, None, strings, objects, booleans, complex numbers)."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy() if value.dtype != torch.bfloat16 else value.detach().float().cpu().numpy()
    if value is None or isinstance(value, (str, bytes, Mapping, Set)):
        raise TypeError(f"{name}: expected {expected}, got {type(value).__name__}")
    try:
        array = np.asarray(value)
    except (TypeError, ValueError) as error:     # ragged nested lists
        raise ValueError(f"{name}: expected {expected}, got a ragged sequence ({error})") from None
    if array.dtype.kind not in "iuf":
        raise TypeError(f"{name}: expected {expected}, got {_KINDS.get(array.dtype.kind, 'values')} "
                        f"(dtype {array.dtype})")
    return array


def _check_finite(array: np.ndarray, name: str, where: str) -> None:
    """NaN/inf and values too large for the computation (> MAX_MAGNITUDE) → ValueError naming the first one.
    ``where``: "rows" or "classes" (what the first axis counts)."""
    one = {"rows": "row", "classes": "class"}[where]
    if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
        bad = ~np.isfinite(array.reshape(len(array), -1)).all(axis=1)
        raise ValueError(f"{name}: expected finite numbers, found NaN or inf in {int(bad.sum())} of {len(array)} "
                         f"{where} (first: {one} {int(np.flatnonzero(bad)[0])})")
    top = float(np.abs(array).max()) if array.size else 0.0
    if top > MAX_MAGNITUDE:
        row = int(np.flatnonzero((np.abs(array.reshape(len(array), -1)) > MAX_MAGNITUDE).any(axis=1))[0])
        raise ValueError(f"{name}: expected values of magnitude ≤ {MAX_MAGNITUDE:g} (larger ones overflow float64 "
                         f"in the computation), found {top:g} ({one} {row})")


def check_features(features, name: str = "features") -> None:
    """(N, d) real numbers, N ≥ 1, d ≥ 1, finite, |x| ≤ MAX_MAGNITUDE; TypeError / ValueError naming ``name``."""
    if isinstance(features, torch.Tensor) and not (features.is_complex() or features.dtype == torch.bool):
        array = None
        shape = tuple(features.shape)
    else:
        array = _numeric_array(features, name, "an (N, d) array of numbers (N vectors × d dims)")
        shape = array.shape
    if len(shape) != 2:
        raise ValueError(f"{name}: expected a 2-D array (N vectors × d dims), got shape {shape}")
    if shape[0] == 0 or shape[1] == 0:
        raise ValueError(f"{name}: expected at least one vector of at least one dim, got shape {shape} (empty)")
    if array is None:   # a tensor: check on its device, fetch only the verdict
        finite = torch.isfinite(features) if features.is_floating_point() else torch.ones_like(features, dtype=bool)
        too_big = features.abs() > MAX_MAGNITUDE
        if bool((~finite).any()) or bool(too_big.any()):
            _check_finite(features.detach().double().cpu().numpy(), name, "rows")
        return
    _check_finite(array, name, "rows")


def check_labels(labels, n_rows: int, name: str = "labels", rows: str = "features",
                 num_classes: int | None = None) -> None:
    """1-D integer class indices ≥ 0, one per row of ``rows``; TypeError / ValueError naming ``name``."""
    array = _numeric_array(labels, name, "a 1-D array of integer class indices")
    if array.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D array of class indices (one per row of {rows}), got shape "
                         f"{array.shape}")
    if len(array) != n_rows:
        raise ValueError(f"{name}: expected {n_rows} labels (one per row of {rows}), got {len(array)}: features "
                         "and labels differ in length")
    if array.dtype.kind == "f":
        bad = ~np.isfinite(array) | (array != np.round(array))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(f"{name}: expected integer class indices, found {array[i].item()!r} at position {i}")
    if array.size and array.min() < 0:
        raise ValueError(f"{name}: expected class indices ≥ 0, found {array.min().item()!r}")
    limit = num_classes if num_classes is not None else n_rows
    if array.size and array.max() >= limit:
        raise ValueError(f"{name}: expected class indices 0 … C−1 with every class present, found "
                         f"{array.max().item()!r} with {n_rows} samples" if num_classes is None else
                         f"{name}: expected class indices < num_classes={num_classes}, found {array.max().item()!r}")


def check_per_class(values, n_classes: int, name: str, expected: str = "one number per class") -> np.ndarray:
    """(C,) finite real numbers ({expected}); returns them as float64. TypeError / ValueError naming ``name``."""
    array = _numeric_array(values, name, f"a 1-D array of {expected}")
    if array.shape != (n_classes,):
        raise ValueError(f"{name}: expected shape ({n_classes},) ({expected}), got shape {array.shape}")
    _check_finite(array, name, "classes")
    return array.astype(np.float64)


def interclass_term(centres, *, alpha: float = 1.0):
    """(W', W) from class centres (C, d): W' = w/max w and W = log₂(α + W'); both (C,), same type as input.

    numpy in → numpy out; a tensor stays on its device (used by the DSB pool every iteration, so the check that
    the centres do not all coincide does not make the host wait for the device: :func:`~semscale_lib.checks.require`).
    """
    _check_alpha(alpha)
    is_numpy = not isinstance(centres, torch.Tensor)
    o = torch.as_tensor(np.asarray(centres, dtype=np.float64)) if is_numpy else centres.to(torch.float64)
    n_classes = o.shape[0]
    if o.ndim != 2 or n_classes < 2:
        raise ValueError(f"need centres of shape (C ≥ 2, d); got {tuple(o.shape)}")
    mean_distance = torch.cdist(o, o).sum(dim=1) / (n_classes - 1)
    top = mean_distance.max()
    require(top > 0, "all class centres coincide: the inter-class term is undefined")
    w_prime = mean_distance / top
    w = torch.log2(alpha + w_prime)
    return (w_prime.numpy(), w.numpy()) if is_numpy else (w_prime, w)


def imbalance_scale(semantic_scales, centres, *, alpha: float = 1.0):
    """S = (S'/max S') ⊙ log₂(α + W') per class → (C,), same type as ``semantic_scales``."""
    is_numpy = not isinstance(semantic_scales, torch.Tensor)
    s = torch.as_tensor(np.asarray(semantic_scales, dtype=np.float64)) if is_numpy \
        else semantic_scales.to(torch.float64)
    top = s.max()
    require(top > 0, "every class has semantic scale 0 (e.g. one sample per class): cannot normalise")
    if not is_numpy:
        centres = centres.to(s.device)
    _, w = interclass_term(centres, alpha=alpha)
    result = (s / top) * torch.as_tensor(w, device=s.device)
    return result.numpy() if is_numpy else result


def class_centres(features, labels, num_classes: int | None = None) -> np.ndarray:
    """Class means of the features: (N, d), (N,) → (C, d) float64."""
    x = _as_float64_tensor(features)
    y = as_label_array(labels, x.shape[0], num_classes)
    counts = class_counts(y, num_classes)
    sums = torch.zeros((len(counts), x.shape[1]), dtype=x.dtype, device=x.device)
    sums.index_add_(0, torch.from_numpy(y).to(x.device), x)
    return (sums / torch.from_numpy(counts).to(x)[:, None]).cpu().numpy()


def quantify_imbalance(features, labels, *, alpha: float = 1.0, num_classes: int | None = None,
                       eps: float = 1.0, class_names: Sequence[str] | None = None, device=None) -> pd.DataFrame:
    """Sec. 3.4.1 per class (docs/paper-notes.md §5). features (N, d), labels (N,) → DataFrame, one row per class:

    ``class``, ``count``, ``semantic_scale`` (S' raw, bits), ``normalized_scale`` (S'/max), ``normalized_distance``
    (W' = w/max w), ``interclass`` (W = log₂(α + W')), ``imbalance_scale`` (S = S'_norm ⊙ W), and ``name`` when
    ``class_names`` is given. ``df.attrs`` records alpha and eps. α = 2 on long-tailed, 1 on balanced data (paper).
    ``device``: where S′ is computed (:func:`~semscale_lib.scale.class_semantic_scales`; None: the CPU for numpy
    input, "auto": CUDA when present), float64; the class centres and W (O(N·d)) stay on the CPU.

    A class with a single sample has S′ = 0 by definition (and so S = 0): a :class:`SingleSampleWarning` says which.
    When every class has S′ = 0 (one sample each, or identical vectors within every class) S′/max S′ is undefined:
    ValueError.
    """
    _check_alpha(alpha)
    if num_classes is not None and (isinstance(num_classes, bool) or not isinstance(num_classes, numbers.Integral)):
        raise TypeError(f"num_classes: expected an integer ≥ 2 or None, got {num_classes!r}")
    if class_names is not None and (isinstance(class_names, (str, bytes, Mapping)) or not hasattr(class_names,
                                                                                                  "__len__")):
        raise TypeError(f"class_names: expected a sequence of one name per class, got {type(class_names).__name__}")
    check_features(features)
    check_labels(labels, features.shape[0] if isinstance(features, torch.Tensor) else len(np.asarray(features)),
                 num_classes=num_classes)
    x = _as_float64_tensor(features)
    y = as_label_array(labels, x.shape[0], num_classes)
    counts = class_counts(y, num_classes)
    if len(counts) < 2:
        raise ValueError("quantify_imbalance needs at least 2 classes")
    raw = class_semantic_scales(x, y, num_classes=len(counts), eps=eps, device=device)
    if not raw.max() > 0:
        why = "every class has a single sample" if np.all(counts == 1) else \
            "every class has a single sample or identical vectors"
        raise ValueError(f"{why}: S′ is 0 for every class (no spread to measure), so S′/max S′ is undefined; "
                         "expected at least one class with ≥ 2 distinct vectors")
    single = np.flatnonzero(counts == 1)
    if single.size:
        warnings.warn(f"classes {single.tolist()} have a single sample: their S′ is 0 by definition (one vector "
                      "spans no volume), so their S is 0 and max/min ratios over classes are undefined",
                      SingleSampleWarning, stacklevel=2)
    centres = class_centres(x, y, len(counts))
    w_prime, w = interclass_term(centres, alpha=alpha)
    table = pd.DataFrame({
        "class": np.arange(len(counts)),
        "count": counts,
        "semantic_scale": raw,
        "normalized_scale": raw / raw.max(),
        "normalized_distance": w_prime,
        "interclass": w,
    })
    table["imbalance_scale"] = table["normalized_scale"] * table["interclass"]
    if class_names is not None:
        if len(class_names) != len(counts):
            raise ValueError(f"{len(class_names)} class names for {len(counts)} classes")
        table.insert(1, "name", list(class_names))
    table.attrs.update(alpha=float(alpha), eps=float(eps))
    return table


def with_alpha(table: pd.DataFrame, alpha: float) -> pd.Series:
    """S at another α from a ``quantify_imbalance`` table (no recomputation of volumes)."""
    _check_alpha(alpha)
    return table["normalized_scale"] * np.log2(alpha + table["normalized_distance"])


def _pearson_row(name: str, values: np.ndarray, accuracy: np.ndarray) -> dict:
    row = {"quantity": name, "n_classes": len(values)}
    if np.ptp(values) == 0 or np.ptp(accuracy) == 0:
        which = "the quantity" if np.ptp(values) == 0 else "the accuracy"
        row.update(pearson_r=np.nan, pearson_p=np.nan, spearman_rho=np.nan, spearman_p=np.nan, ci_low=np.nan,
                   ci_high=np.nan, defined=False,
                   note=f"undefined: {which} is constant across classes (e.g. equal counts on balanced data)")
        return row
    pearson = stats.pearsonr(values, accuracy)
    spearman = stats.spearmanr(values, accuracy)
    low, high = fisher_ci(float(pearson.statistic), len(values)) if len(values) > 3 else (np.nan, np.nan)
    row.update(pearson_r=float(pearson.statistic), pearson_p=float(pearson.pvalue),
               spearman_rho=float(spearman.statistic), spearman_p=float(spearman.pvalue),
               ci_low=float(low), ci_high=float(high), defined=True,
               note="" if np.isfinite(low) else "no CI with 3 classes (Fisher z needs n > 3)")
    return row


def correlate(per_class_accuracy, table: pd.DataFrame, *, alphas: Sequence[float] = TABLE1_ALPHAS,
              beta: float = 0.9999) -> pd.DataFrame:
    """Table 1 of the paper on your data: correlation over classes of accuracy with N, log N (ours: with an
    exponential count profile accuracy follows log N far more closely than N), E_n, W, S', S(α).

    per_class_accuracy: (C,) in any unit; table: the output of ``quantify_imbalance``. Returns one row per
    quantity: Pearson r and p (the paper's measure), Spearman ρ and p, a 95% Fisher-z CI of r (ours;
    a percentile bootstrap over ~10 classes is too narrow), ``defined`` and a ``note``. A constant column (counts on
    balanced data) is reported as undefined, never as a number. β for E_n is not given by the paper [ours: 0.9999].
    W is taken at the table's α.
    """
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"table: expected the DataFrame returned by quantify_imbalance, got {type(table).__name__}")
    missing = [c for c in TABLE_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"table: expected the columns of quantify_imbalance, missing {missing}")
    accuracy = check_per_class(per_class_accuracy, len(table), "per_class_accuracy",
                               "one accuracy per class, in any unit")
    if len(table) < 3:
        raise ValueError("correlation over classes needs at least 3 classes")
    quantities = {
        "N": table["count"].to_numpy(np.float64),
        "log N": np.log2(table["count"].to_numpy(np.float64)),
        "E_n": effective_number(table["count"].to_numpy(), beta),
        "W": table["interclass"].to_numpy(),
        "S'": table["normalized_scale"].to_numpy(),
    }
    for alpha in alphas:
        quantities[f"S (alpha={alpha:g})"] = with_alpha(table, alpha).to_numpy()
    rows = [_pearson_row(name, values, accuracy) for name, values in quantities.items()]
    result = pd.DataFrame(rows)
    result.attrs.update(beta=beta, table_alpha=table.attrs.get("alpha"))
    return result


def imbalance_summary(table: pd.DataFrame) -> pd.DataFrame:
    """[ours — the paper defines no dataset-level index] max/min ratio and coefficient of variation (sd/mean)
    of the count, of S' and of S across classes, as a small DataFrame labelled accordingly. A ratio over a
    smallest value of 0 (e.g. S′ of a class with a single sample) and a coefficient over a mean of 0 are
    :data:`UNDEFINED` (the string), never inf or an empty cell."""
    rows = []
    for column, label in [("count", "count N"), ("semantic_scale", "S' (raw)"), ("imbalance_scale", "S")]:
        values = table[column].to_numpy(np.float64)
        ratio = values.max() / values.min() if values.min() > 0 else UNDEFINED
        rows.append({"quantity": label, "max_over_min [ours]": ratio,
                     "coef_of_variation [ours]": values.std() / values.mean() if values.mean() > 0 else UNDEFINED})
    return pd.DataFrame(rows)
