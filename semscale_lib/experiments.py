"""The experiments behind the notebooks: each paper claim as a few library calls (SPEC §3–§5, §7).

The notebooks in ``notebooks/`` stay thin: they call the functions here, show the results and state whether the
claim held. Everything a notebook needs twice, or any non-trivial computation, lives here so that it is tested.

- **Marginal effect** (SPEC §3, notebook 01): :func:`nested_sample_volumes`, :func:`train_subset`,
  :func:`volume_totals`, :func:`concavity`, :func:`saturation_point`, :func:`fit_stats`,
  :func:`marginal_effect_correlations`, :func:`marginal_effect_verdict`.
- **Correlation study** (SPEC §4, the paper's Table 1, notebook 02): :func:`correlation_sources` (pixels, training
  and test features), :func:`correlation_study`, :func:`imbalance_table`, :func:`average_tables`,
  :func:`table1_comparison`, :func:`correlation_verdicts`, :func:`describe_r`; reference values
  :data:`TABLE1_REFERENCE`.
- **Training grids** (SPEC §5, notebooks 03–04): :func:`run_methods`, :func:`static_weighting_grid`,
  :func:`static_dsb_weights`, :func:`learning_curves`, :func:`group_table`, :func:`summary_table`,
  :func:`compare_pairs`, :func:`weights_history`.
- **Report** (notebook 05): :func:`claim_record`, :func:`write_claims`, :func:`read_outputs`, :func:`read_claims`,
  :func:`build_report`, :func:`markdown_table`.
- **Helpers**: :func:`training_images`, :func:`embed_run`, :func:`save_and_show`, :func:`require_versions`.

Every claim a notebook checks is written as a record to ``<out_dir>/claims.json`` (:func:`write_claims`):
what the paper reports, what we measured, on which data, and the verdict decided by the falsification rules of
``TRANSCRIPTION.md §5`` (quoted in each record's ``rule``). ``05_report`` collects them (:func:`read_claims`).
Thresholds that the paper does not give (what "saturated", "near 0" or "keeps rising" mean) are **[ours]** and
are parameters with stated defaults.
"""
from __future__ import annotations

import dataclasses
import itertools
import json
import math
import shutil
import time
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from scipy import stats

from .data import ImageArrays, load_dataset, load_split, nested_balanced_indices
from .imbalance import TABLE1_ALPHAS, correlate, quantify_imbalance
from .losses import dsb_class_weights
from .metrics import group_accuracy, mean_sd_table
from .scale import class_semantic_scales, effective_number, resize_images

CLAIMS_FILE = "claims.json"
VERDICTS = ("held", "not held", "not testable")

# ----------------------------------------------------------------------------------------------------------------
# reference numbers (SPEC §7) — the paper's, never ours
# ----------------------------------------------------------------------------------------------------------------
_T1_COLUMNS = ("N", "E_n", "W", "S'") + tuple(f"S (alpha={a:g})" for a in TABLE1_ALPHAS)
_T1_ROWS = {
    ("CIFAR-10-LT", "ResNet-18"): (0.8346, 0.8664, 0.2957, 0.8688, 0.8456, 0.9603, 0.9553, 0.9398, 0.9269),
    ("CIFAR-10-LT", "ResNet-34"): (0.7938, 0.8476, 0.3186, 0.9426, 0.7950, 0.9678, 0.9884, 0.9854, 0.9796),
    ("CIFAR-10", "ResNet-18"): (None, None, 0.1743, 0.5433, 0.7850, 0.7250, 0.6644, 0.6060, 0.5607),
    ("CIFAR-10", "ResNet-34"): (None, None, 0.2075, 0.5750, 0.8056, 0.7442, 0.6870, 0.6465, 0.5906),
}
#: The paper's Table 1 (SPEC §7): Pearson r of per-class accuracy with each quantity, keyed by (data, model) and
#: then by :func:`~semscale_lib.imbalance.correlate`'s quantity names. N and E_n on balanced CIFAR-10 are
#: undefined (constant columns, SPEC §4) and stored as NaN, not as the paper's 0.0950 / 0.1502.
TABLE1_REFERENCE: dict[tuple[str, str], dict[str, float]] = {
    key: {q: (np.nan if v is None else v) for q, v in zip(_T1_COLUMNS, values)} for key, values in _T1_ROWS.items()
}

#: Text of the paper's other reference numbers (SPEC §7), for the report.
PAPER_NUMBERS = {
    "table2": "ImageNet-LT CE 44.4 (65.9/37.5/7.7) → DSB-CE 49.2 (67.3/42.5/21.4); Focal 47.2 → 50.6; "
              "LDAM 51.1 → 52.3; BS 51.2 → 52.8; iNaturalist 2018 CE 61.7 → DSB-CE 64.3; LDAM 64.6 → 65.7",
    "table3": "balanced CIFAR-100, CE → DSB-CE: ResNet-18 75.6 → 76.9; ResNet-34 76.8 → 77.9 "
              "(+0.7 to +1.5 over 8 networks); ImageNet ResNet-50 76.0 → 76.8",
    "fig18": "CIFAR-100-LT, DSB-CE only, IF 200/100/50/10: 41.2 / 45.5 / 49.4 / 60.2 (no CE baseline given)",
    "peers": "peers (not the paper), CIFAR-100-LT IF 100, ResNet-32: CE 38.32; CB-CE 38.97; LDAM-DRW 42.04; "
             "BS 42.99",
}


#: The paper's X → DSB-X top-1 (Table 2: ImageNet-LT; iNaturalist 2018), by our loss names.
PAPER_DSB_GAINS = {
    "ce": "ImageNet-LT CE 44.4 → DSB-CE 49.2; iNat-2018 61.7 → 64.3",
    "focal": "ImageNet-LT Focal 47.2 → 50.6; iNat-2018 61.1 → 63.5",
    "ldam": "ImageNet-LT LDAM 51.1 → 52.3; iNat-2018 64.6 → 65.7",
    "balanced-softmax": "ImageNet-LT BS 51.2 → 52.8; iNat-2018 53.2 → 55.1",
}

# ----------------------------------------------------------------------------------------------------------------
# small helpers
# ----------------------------------------------------------------------------------------------------------------
def _json_default(obj):
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return None if not np.isfinite(obj) else float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, (set, tuple)):
        return list(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def _clean_nan(obj):
    """NaN/inf → None, recursively (JSON has no NaN)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _clean_nan(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean_nan(v) for v in obj]
    return obj


def write_json(path, obj) -> Path:
    """Write ``obj`` as indented JSON (NaN → null, numpy → python); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_clean_nan(obj), indent=2, default=_json_default, ensure_ascii=False) + "\n")
    return path


def prepare_out_dir(out_dir) -> Path:
    """Create ``out_dir`` (and parents) and return it as a Path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return out


def save_and_show(fig, path, *, show: bool = True) -> None:
    """Save a matplotlib figure as PNG (150 dpi), display it in a notebook (when ``show``), then close it.

    Returns None on purpose: a notebook cell ending with this call shows the figure and nothing else (nbval runs
    cells without input history, so IPython's trailing-``;`` output suppression does not work there)."""
    import matplotlib.pyplot as plt
    path = Path(path)
    fig.tight_layout()
    fig.savefig(path, dpi=150)
    if show:
        try:
            from IPython.display import display
            display(fig)
        except ImportError:  # pragma: no cover - IPython ships with ipykernel
            pass
    plt.close(fig)


def thumbnail(path, *, width: int = 800, quality: int = 80) -> bytes:
    """A PNG figure as JPEG bytes at most ``width`` pixels wide — for showing many figures in one notebook
    without making it megabytes large (display with ``IPython.display.Image(data=..., format="jpeg")``)."""
    import io

    from PIL import Image

    with Image.open(path) as image:
        image = image.convert("RGB")
        if image.width > width:
            image = image.resize((width, round(image.height * width / image.width)), Image.LANCZOS)
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=quality, optimize=True)
    return buffer.getvalue()


def fmt(value, decimals: int = 3) -> str:
    """A number for a table: fixed decimals, ``"undefined"`` for NaN/None."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "undefined"
    return f"{float(value):.{decimals}f}"


def markdown_table(frame: pd.DataFrame, *, decimals: int = 3) -> str:
    """A DataFrame as a GitHub markdown table (floats with ``decimals``; NaN → ``undefined``)."""
    def cell(v):
        if isinstance(v, (float, np.floating)):
            return fmt(float(v), decimals)
        return str(v).replace("|", "\\|").replace("\n", " ")
    header = "| " + " | ".join(str(c) for c in frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    rows = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *rows])


# ----------------------------------------------------------------------------------------------------------------
# claims (read by 05_report)
# ----------------------------------------------------------------------------------------------------------------
def claim_record(*, claim: str, spec: str, paper: str, measured: str, data: str, verdict: str, rule: str,
                 numbers: Mapping | None = None, figures: Sequence[str] = ()) -> dict:
    """One checked claim: ``verdict`` is one of :data:`VERDICTS`; ``rule`` quotes the falsification rule used."""
    if verdict not in VERDICTS:
        raise ValueError(f"verdict must be one of {VERDICTS}, got {verdict!r}")
    return {"claim": claim, "spec": spec, "paper": paper, "measured": measured, "data": data, "verdict": verdict,
            "rule": rule, "numbers": dict(numbers or {}), "figures": list(figures)}


def write_claims(out_dir, notebook: str, claims: Sequence[dict], *, parameters: Mapping | None = None,
                 figures: Sequence[str] = (), tables: Sequence[Mapping] = ()) -> Path:
    """Write ``<out_dir>/claims.json``: the notebook's name, its parameters, its claim records, and the figures
    (PNG file names in ``out_dir``) and tables (``{"title", "file"}``, CSV files in ``out_dir``) that
    ``05_report`` should show."""
    for table in tables:
        if set(table) != {"title", "file"}:
            raise ValueError(f"a table entry needs exactly 'title' and 'file', got {sorted(table)}")
    return write_json(Path(out_dir) / CLAIMS_FILE,
                      {"notebook": notebook, "parameters": dict(parameters or {}), "claims": list(claims),
                       "figures": list(figures), "tables": [dict(t) for t in tables]})


def read_outputs(run_dir, *, exclude: Iterable = ()) -> list[dict]:
    """Every ``claims.json`` under ``run_dir`` (sorted by path), each with ``folder`` (absolute) added."""
    root = Path(run_dir)
    excluded = {Path(e).resolve() for e in exclude}
    found = []
    for path in sorted(root.rglob(CLAIMS_FILE)):
        if path.parent.resolve() in excluded:
            continue
        saved = json.loads(path.read_text())
        saved["folder"] = str(path.parent)
        found.append(saved)
    return found


def read_claims(run_dir, *, exclude: Iterable = ()) -> pd.DataFrame:
    """All claim records under ``run_dir`` (``**/claims.json``), one row each, in path order.

    Columns: notebook, folder (relative to ``run_dir``), then the record's fields. Folders in ``exclude`` are
    skipped (05_report excludes its own).
    """
    root = Path(run_dir)
    rows = []
    for saved in read_outputs(root, exclude=exclude):
        for record in saved.get("claims", []):
            rows.append({"notebook": saved.get("notebook", ""),
                         "folder": str(Path(saved["folder"]).relative_to(root)), **record})
    columns = ["notebook", "folder", "claim", "spec", "paper", "measured", "data", "verdict", "rule", "numbers",
               "figures"]
    return pd.DataFrame(rows, columns=columns)


def require_versions(minimums: Mapping[str, str]) -> dict[str, str]:
    """Assert that each package (import name → minimum "major.minor[.patch]") is installed at least at that
    version; returns {name: installed version}. Raises AssertionError naming what is too old."""
    import importlib

    def key(version: str) -> tuple[int, ...]:
        parts = []
        for piece in version.split("+")[0].split("."):
            digits = "".join(itertools.takewhile(str.isdigit, piece))
            if not digits:
                break
            parts.append(int(digits))
        return tuple(parts)

    installed = {}
    for name, minimum in minimums.items():
        version = getattr(importlib.import_module(name), "__version__", "0")
        installed[name] = version
        assert key(version) >= key(minimum), f"{name} {version} is older than the required {minimum}"
    return installed


# ----------------------------------------------------------------------------------------------------------------
# statistics shared by the claims
# ----------------------------------------------------------------------------------------------------------------
def fit_stats(x, y) -> dict:
    """Pearson r, its p-value and R² (= r², of the least-squares line) of ``y`` on ``x`` (both (n,)).

    NaN everywhere (and ``defined=False``) when either vector is constant or n < 3.
    """
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"x and y must be 1-D of the same length, got {x.shape} and {y.shape}")
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return {"n": len(x), "r": np.nan, "r2": np.nan, "p": np.nan, "defined": False}
    result = stats.pearsonr(x, y)
    r = float(result.statistic)
    return {"n": len(x), "r": r, "r2": r * r, "p": float(result.pvalue), "defined": True}


# ----------------------------------------------------------------------------------------------------------------
# SPEC §3: marginal effect
# ----------------------------------------------------------------------------------------------------------------
def nested_sample_volumes(data: ImageArrays, sizes: Sequence[int], *, seed: int, size: int = 16,
                          eps: float = 1.0) -> pd.DataFrame:
    """Per-class sample volume S′ (Algorithm 1) of nested sample-balanced subsets (SPEC §3).

    ``data``: an :class:`~semscale_lib.data.ImageArrays`; ``sizes``: samples per class m (each ≤ the smallest
    class). The subsets are nested (``nested_balanced_indices`` with ``seed``): samples are added, never redrawn.
    Returns a long DataFrame with columns m, class, name, semantic_scale (bits), sorted by m then class.
    """
    sizes = sorted({int(m) for m in sizes})
    resized = resize_images(data.images, size)
    subsets = nested_balanced_indices(data.labels, sizes, seed=seed, num_classes=data.num_classes)
    frames = []
    for m in sizes:
        idx = subsets[m]
        scales = class_semantic_scales(resized[idx], data.labels[idx], num_classes=data.num_classes, eps=eps)
        frames.append(pd.DataFrame({"m": m, "class": np.arange(data.num_classes), "name": data.classes,
                                    "semantic_scale": scales}))
    return pd.concat(frames, ignore_index=True)


def volume_totals(volumes: pd.DataFrame, column: str = "semantic_scale") -> pd.DataFrame:
    """Σ over classes of ``column`` per m, its mean and sd over classes, and the increment per added sample.

    Returns columns m, total, mean, sd, increment (Δtotal/Δm from the previous m; NaN for the first).
    """
    grouped = volumes.groupby("m", sort=True)[column]
    totals = pd.DataFrame({"total": grouped.sum(), "mean": grouped.mean(), "sd": grouped.std(ddof=1)}).reset_index()
    totals["increment"] = totals["total"].diff() / totals["m"].diff()
    return totals


def concavity(m, values) -> dict:
    """Do the increments per added sample shrink? ``m`` increasing (k,), ``values`` (k,) → dict with
    ``increments`` (k−1,), ``shrinking`` (k−2,) booleans, ``fraction_shrinking`` and ``concave`` (all shrink)."""
    m, v = np.asarray(m, np.float64), np.asarray(values, np.float64)
    if m.shape != v.shape or m.ndim != 1 or len(m) < 3 or np.any(np.diff(m) <= 0):
        raise ValueError("concavity needs ≥ 3 strictly increasing m with one value each")
    inc = np.diff(v) / np.diff(m)
    shrinking = np.diff(inc) <= 0
    return {"increments": inc, "shrinking": shrinking, "fraction_shrinking": float(shrinking.mean()),
            "concave": bool(shrinking.all())}


def saturation_point(m, totals, level: float = 0.95):
    """[ours] The smallest m at which ``totals`` reaches ``level`` × its value at the largest m, or None when only
    the largest m does (no saturation inside the measured range). ``m`` increasing (k,), ``totals`` (k,)."""
    m, t = np.asarray(m), np.asarray(totals, np.float64)
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    reached = np.flatnonzero(t >= level * t[-1])
    first = int(reached[0])
    return None if first == len(m) - 1 else int(m[first])


def marginal_effect_verdict(volumes: pd.DataFrame, accuracy: pd.DataFrame, *, level: float = 0.95,
                            rise_tol: float = 0.01, concave_fraction: float = 1.0) -> dict:
    """Decide the marginal-effect claim (TRANSCRIPTION §5.1) from measured numbers.

    ``volumes``: :func:`nested_sample_volumes` output; ``accuracy``: columns m, top1 (mean over seeds per m).
    Falsified if S′(m) is not concave and saturating (its increments do not shrink), or accuracy keeps rising
    after Σ S′ has saturated. [ours] "concave" = the increments of Σ S′ per added sample shrink at a fraction
    ≥ ``concave_fraction`` of the steps; "saturated" = :func:`saturation_point` at ``level``; "keeps rising" =
    top-1 gains more than ``rise_tol`` between the first trained m ≥ the saturation point and the largest
    trained m. Returns a dict with the pieces and ``verdict`` ∈ :data:`VERDICTS` and a one-sentence ``sentence``.
    """
    totals = volume_totals(volumes)
    shape = concavity(totals["m"], totals["total"])
    per_class = [concavity(g["m"], g["semantic_scale"])["concave"] for _, g in volumes.groupby("class")]
    m_sat = saturation_point(totals["m"], totals["total"], level)
    acc = accuracy.groupby("m", sort=True)["top1"].mean()
    concave_ok = shape["fraction_shrinking"] >= concave_fraction
    after = acc[acc.index >= m_sat] if m_sat is not None else acc.iloc[0:0]
    gain_after = float(after.iloc[-1] - after.iloc[0]) if len(after) >= 2 else np.nan
    if not concave_ok or m_sat is None:
        verdict = "not held"
        why = ("the increments of Σ S′ do not shrink" if not concave_ok
               else f"Σ S′ does not reach {level:.0%} of its final value before the largest m")
    elif not np.isfinite(gain_after):
        verdict = "not testable"
        why = (f"Σ S′ saturates at m = {m_sat}, but fewer than two models were trained at m ≥ {m_sat}, so "
               "whether accuracy keeps rising afterwards is untested")
    elif gain_after > rise_tol:
        verdict = "not held"
        why = (f"Σ S′ saturates at m = {m_sat} ({level:.0%} of its final value) but top-1 still rises by "
               f"{gain_after:+.3f} from m = {after.index[0]} to m = {after.index[-1]} (tolerance {rise_tol:.3f})")
    else:
        verdict = "held"
        why = (f"Σ S′ saturates at m = {m_sat} ({level:.0%} of its final value) and top-1 changes by only "
               f"{gain_after:+.3f} from m = {after.index[0]} to m = {after.index[-1]} (tolerance {rise_tol:.3f})")
    return {"verdict": verdict, "sentence": why, "saturation_m": m_sat, "level": level,
            "fraction_shrinking": shape["fraction_shrinking"], "concave_total": shape["concave"],
            "classes_concave": float(np.mean(per_class)), "gain_after_saturation": gain_after,
            "rise_tol": rise_tol}


def marginal_effect_correlations(accuracy: pd.DataFrame, totals: pd.DataFrame, *,
                                 betas: Sequence[float] = (0.9, 0.99, 0.999, 0.9999),
                                 feature_totals: pd.DataFrame | None = None) -> pd.DataFrame:
    """[ours] Pearson r and R² of top-1 (mean over seeds per trained m) against Σ S′ (pixels), against m, against
    E_m for each β and, when given, against Σ S′ of each subset's own model's features (columns m, total).

    Returns one row per predictor: predictor, n, r, r2, p, defined.
    """
    acc = accuracy.groupby("m", sort=True)["top1"].mean()
    ms = acc.index.to_numpy()
    total = totals.set_index("m")["total"]
    missing = set(ms) - set(total.index)
    if missing:
        raise ValueError(f"no sample volume for trained m = {sorted(missing)}")
    predictors = {"Σ S′ (pixels)": total.loc[ms].to_numpy(), "m": ms.astype(np.float64)}
    if feature_totals is not None:
        predictors["Σ S′ (features of its own model)"] = \
            feature_totals.groupby("m", sort=True)["total"].mean().loc[ms].to_numpy()
    for beta in betas:
        predictors[f"E_m (β={beta:g})"] = effective_number(ms, beta)
    rows = [{"predictor": name, **fit_stats(values, acc.to_numpy())} for name, values in predictors.items()]
    return pd.DataFrame(rows)


def train_subset(config, train_data: ImageArrays, test_data: ImageArrays, indices, *, min_steps: int = 0,
                 progress: bool = False) -> dict:
    """Train ``config.model`` from scratch on ``train_data.subset(indices)`` and evaluate it on ``test_data``.

    The marginal-effect study (SPEC §3) trains one model per nested subset; ``train()`` only trains on whole
    (or long-tailed) datasets, so this runs the same recipe (optimizer, schedule, augmentation, loss of
    ``config``, a :class:`~semscale_lib.train.TrainConfig`) through the trainer's pieces. [ours] Small subsets
    get more epochs so that every model takes at least ``min_steps`` optimizer steps: epochs =
    max(config.epochs, ⌈min_steps / batches per epoch⌉); the schedule is stretched accordingly. The test set is
    only used once, after training. Deterministic on the CPU for a fixed ``config.seed``.

    Returns {top1, per_class (C,), epochs, steps, seconds, train_features (m·C, D), train_labels} — the features
    are the model's embeddings of its own training subset (for the feature volume).
    """
    from .batches import TensorBatches
    from .models import build_model
    from .train import NO_FLIP, evaluate, make_loss, make_optimizer_and_schedule, resolve_device

    started = time.perf_counter()
    subset = train_data.subset(np.asarray(indices))
    counts = np.bincount(subset.labels, minlength=train_data.num_classes)
    if np.any(counts == 0):
        raise ValueError(f"classes {np.flatnonzero(counts == 0).tolist()} have no sample in the subset")
    batches_per_epoch = math.ceil(len(subset) / config.batch_size)
    epochs = max(int(config.epochs), math.ceil(min_steps / batches_per_epoch))
    config = dataclasses.replace(config, epochs=epochs)
    device = resolve_device(config.device)
    if device.type == "cpu":
        torch.use_deterministic_algorithms(True)
    pad = 4 if subset.images.shape[1] >= 28 else 1
    base = config.dataset[:-3] if config.dataset.endswith("-lt") else config.dataset
    train_batches = TensorBatches(subset.images, subset.labels, device=device, pad=pad, flip=base not in NO_FLIP)
    test_batches = TensorBatches(test_data.images, test_data.labels, device=device,
                                 mean=train_batches.mean.flatten().cpu().numpy(),
                                 std=train_batches.std.flatten().cpu().numpy())
    torch.manual_seed(config.seed)
    model = build_model(config.model, train_data.num_classes, in_channels=subset.images.shape[-1],
                        normalized_classifier=config.loss == "ldam").to(device)
    optimizer, scheduler = make_optimizer_and_schedule(model, config)
    loss_fn = make_loss(config, counts).to(device)
    generator = torch.Generator().manual_seed(config.seed)
    steps = 0
    for _ in range(epochs):
        order = torch.randperm(len(train_batches), generator=generator)
        model.train()
        for start in range(0, len(order), config.batch_size):
            inputs, targets = train_batches.batch(order[start:start + config.batch_size], generator=generator,
                                                  augment=config.augment)
            loss = loss_fn(model(inputs), targets)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            steps += 1
        scheduler.step()
    test = evaluate(model, test_batches, counts, batch_size=config.eval_batch_size)
    own = evaluate(model, TensorBatches(subset.images, subset.labels, device=device,
                                        mean=train_batches.mean.flatten().cpu().numpy(),
                                        std=train_batches.std.flatten().cpu().numpy()),
                   counts, batch_size=config.eval_batch_size)
    return {"top1": test["top1"], "per_class": test["per_class"], "epochs": epochs, "steps": steps,
            "seconds": time.perf_counter() - started, "train_features": own["embeddings"],
            "train_labels": subset.labels}


# ----------------------------------------------------------------------------------------------------------------
# SPEC §4: correlation of per-class accuracy with N, E_n, W, S′, S (Table 1)
# ----------------------------------------------------------------------------------------------------------------
def training_images(run: Mapping, data_root=None) -> ImageArrays:
    """The training images of a finished run (``load_run`` dict): the whole training set, or its long-tailed
    subset read back from the run's saved split file (so it is exactly the set the model saw)."""
    saved = run["config"]
    config = saved["config"]
    base = config["dataset"][:-3] if config["dataset"].endswith("-lt") else config["dataset"]
    data = load_dataset(base, train=True, root=data_root or config.get("data_root"))
    if saved.get("split_file"):
        indices, _ = load_split(saved["split_file"])
        data = data.subset(indices)
    counts = np.bincount(data.labels, minlength=data.num_classes).tolist()
    if counts != list(saved["train_counts"]):
        raise ValueError(f"training images give counts {counts}, the run recorded {saved['train_counts']}")
    return data


@torch.no_grad()
def embed_run(run_dir, images: ImageArrays, *, batch_size: int = 512, device: str = "cpu") -> np.ndarray:
    """Embeddings (N, D) of ``images`` by the final model of a run (its ``checkpoint.pt``), normalised with the
    run's training statistics (the mean/sd of its training images, as in training)."""
    from .batches import TensorBatches
    from .models import build_model
    from .train import load_run

    run_dir = Path(run_dir)
    run = load_run(run_dir)
    config = run["config"]["config"]
    checkpoint = run_dir / "checkpoint.pt"
    if not checkpoint.exists():
        raise FileNotFoundError(f"{checkpoint} not found: the run's final model is needed for its embeddings")
    train_images = training_images(run)
    model = build_model(config["model"], len(run["config"]["train_counts"]), in_channels=images.images.shape[-1],
                        normalized_classifier=config["loss"] == "ldam")
    state = torch.load(checkpoint, map_location=device, weights_only=False)
    model.load_state_dict(state["model"])
    model.to(device).eval()
    reference = TensorBatches(train_images.images, train_images.labels, device=device)
    batches = TensorBatches(images.images, images.labels, device=device,
                            mean=reference.mean.flatten().cpu().numpy(), std=reference.std.flatten().cpu().numpy())
    out = [model(inputs, return_features=True)[1].float().cpu() for inputs, _ in batches.ordered(batch_size)]
    return torch.cat(out).numpy()


def correlation_study(accuracy, vectors, labels, *, counts, alpha: float, class_names=None, beta: float = 0.9999,
                      n_resamples: int = 2000, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """SPEC §4 on one set of vectors: (per-class table, Table-1-layout correlations).

    ``vectors`` (N, d) with ``labels`` (N,) give S′, W and S (``quantify_imbalance`` at ``alpha``); ``counts``
    (C,) are the *training* counts (N and E_n; the number of vectors per class is kept as ``vectors``);
    ``accuracy`` (C,) the per-class test accuracy. Correlations are ``correlate``'s (Pearson r, p, Spearman,
    bootstrap CI with ``seed``; constant columns undefined).
    """
    table = imbalance_table(vectors, labels, counts=counts, alpha=alpha, class_names=class_names)
    return table, correlate(np.asarray(accuracy, np.float64), table, beta=beta, n_resamples=n_resamples, seed=seed)


def imbalance_table(vectors, labels, *, counts, alpha: float, class_names=None) -> pd.DataFrame:
    """``quantify_imbalance`` of (vectors (N, d), labels (N,)) at ``alpha`` with ``count`` set to the training
    ``counts`` (C,) and the number of vectors per class kept as column ``vectors``."""
    counts = np.asarray(counts)
    table = quantify_imbalance(vectors, labels, alpha=alpha, num_classes=len(counts), class_names=class_names)
    table.insert(table.columns.get_loc("count"), "vectors", table["count"].to_numpy())
    table["count"] = counts
    return table


def average_tables(tables: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """[ours] Mean over seeds of per-class ``quantify_imbalance`` tables (same classes in the same order): numeric
    columns are averaged, and S is recomputed from the averaged S′/max and W; ``attrs`` of the first are kept."""
    if not tables:
        raise ValueError("no tables to average")
    first = tables[0]
    numeric = [c for c in first.columns if c not in ("class", "name") and pd.api.types.is_numeric_dtype(first[c])]
    mean = sum(t[numeric].to_numpy(np.float64) for t in tables) / len(tables)
    out = first.copy()
    out[numeric] = mean
    out["imbalance_scale"] = out["normalized_scale"] * out["interclass"]
    out.attrs.update(first.attrs)
    return out


SOURCES = ("pixels (training images)", "features (training set)", "features (test set)")


def source_slug(source: str) -> str:
    """A file-name part for one of :data:`SOURCES`: ``"pixels (training images)"`` → ``"pixels-training"``."""
    kind, _, detail = source.partition(" (")
    return f"{kind}-{detail.split(' ')[0]}" if detail else kind


def correlation_sources(run_dirs: Sequence, *, alpha: float, image_size: int = 16, n_resamples: int = 2000,
                        seed: int = 0, sources: Sequence[str] = SOURCES) -> dict:
    """SPEC §4 for the runs (seeds) of one setting, from three kinds of vectors (which fed Table 1 is not stated,
    so all are reported, labelled):

    - ``"pixels (training images)"``: the sample volume (Algorithm 1) of the images the models trained on;
    - ``"features (training set)"``: each run's final model's embeddings of its training images;
    - ``"features (test set)"``: each run's saved test-set embeddings.

    Per-class accuracy is the mean over the runs; feature tables are averaged over the runs
    (:func:`average_tables`) [ours]. Returns {"accuracy" (C,), "counts" (C,), "names", "tables": {source →
    table}, "correlations": {source → ``correlate`` output}}.
    """
    from .train import load_run

    unknown = set(sources) - set(SOURCES)
    if unknown:
        raise ValueError(f"unknown sources {sorted(unknown)}; valid: {list(SOURCES)}")
    runs = [load_run(d) for d in run_dirs]
    if not runs:
        raise ValueError("no runs given")
    counts = np.asarray(runs[0]["config"]["train_counts"])
    accuracy = np.mean([r["per_class"]["accuracy"].to_numpy() for r in runs], axis=0)
    images = training_images(runs[0])
    names = list(images.classes)
    tables, correlations = {}, {}
    for source in sources:
        if source == SOURCES[0]:
            per_run = [(resize_images(images.images, image_size), images.labels)]
        elif source == SOURCES[1]:
            per_run = []
            for run_dir, run in zip(run_dirs, runs):
                own = training_images(run)
                per_run.append((embed_run(run_dir, own), own.labels))
        else:
            per_run = [(r["test_features"], r["test_labels"]) for r in runs]
        table = average_tables([imbalance_table(v, y, counts=counts, alpha=alpha, class_names=names)
                                for v, y in per_run])
        tables[source] = table
        correlations[source] = correlate(accuracy, table, n_resamples=n_resamples, seed=seed)
    return {"accuracy": accuracy, "counts": counts, "names": names, "tables": tables, "correlations": correlations}


def _significant(row: Mapping) -> tuple[bool, str]:
    """(r differs from 0, how that was decided): the bootstrap 95% CI excludes 0; when the CI is undefined
    (too many resamples with constant values) the Pearson p-value < 0.05 decides [ours]."""
    low, high = row.get("ci_low", np.nan), row.get("ci_high", np.nan)
    if np.isfinite(low) and np.isfinite(high):
        return bool(low > 0 or high < 0), "its 95% CI " + ("excludes" if (low > 0 or high < 0) else "includes") + " 0"
    p = row.get("pearson_p", np.nan)
    return bool(np.isfinite(p) and p < 0.05), f"bootstrap CI undefined, p = {p:.3f}"


def describe_r(row: Mapping) -> str:
    """One plain sentence about one correlation row of ``correlate``: sign, size and whether it differs from 0."""
    if not row.get("defined", False):
        note = row.get("note") or "undefined: a constant column"
        return f"r(accuracy, {row['quantity']}) is {note if note.startswith('undefined') else 'undefined: ' + note}"
    r, low, high = row["pearson_r"], row["ci_low"], row["ci_high"]
    sign = "positive" if r > 0 else "negative" if r < 0 else "zero"
    significant, how = _significant(row)
    ci = f" [{low:.2f}, {high:.2f}]" if np.isfinite(low) and np.isfinite(high) else ""
    return f"r(accuracy, {row['quantity']}) = {r:.2f}{ci}: {sign}, {how}" + ("" if significant else
                                                                             " (not significant)")


def table1_comparison(ours: Mapping[str, pd.DataFrame], *, balanced: bool) -> pd.DataFrame:
    """The paper's Table 1 layout with our columns beside the paper's (SPEC §7).

    ``ours``: {source label → ``correlate`` output}. Returns one row per quantity: our r with its 95% CI per source
    (string ``"r [low, high]"``, or ``"undefined"``), then the paper's ResNet-18 and ResNet-34 values for CIFAR-10
    (``balanced``) or CIFAR-10-LT — labelled as such: different data from ours.
    """
    data = "CIFAR-10" if balanced else "CIFAR-10-LT"
    quantities = list(next(iter(ours.values()))["quantity"])
    frame = pd.DataFrame({"quantity": quantities})
    for label, corr in ours.items():
        indexed = corr.set_index("quantity")
        frame[label] = [
            "undefined" if not indexed.loc[q, "defined"] else
            f"{indexed.loc[q, 'pearson_r']:.2f} [{indexed.loc[q, 'ci_low']:.2f}, {indexed.loc[q, 'ci_high']:.2f}]"
            for q in quantities]
    for model in ("ResNet-18", "ResNet-34"):
        reference = TABLE1_REFERENCE[(data, model)]
        frame[f"paper {data} {model}"] = [fmt(reference.get(q, np.nan), 4) for q in quantities]
    return frame


def correlation_verdicts(corr: pd.DataFrame, *, balanced: bool, alpha: float) -> dict:
    """Decide claim 2 (TRANSCRIPTION §5.2) on one correlation table.

    Balanced data: falsified if r(S, acc) at ``alpha`` is near 0 — [ours] its 95% bootstrap CI includes 0 (or,
    when the CI is undefined, p ≥ 0.05), or r ≤ 0. Long-tailed data: falsified if r(S, acc) at ``alpha`` is not
    above r(N, acc). Returns {verdict, sentence, r_S, ci_S, r_N}.
    """
    indexed = corr.set_index("quantity")
    key = f"S (alpha={alpha:g})"
    s_row = indexed.loc[key]
    r_s = float(s_row["pearson_r"])
    ci = (float(s_row["ci_low"]), float(s_row["ci_high"]))
    r_n = float(indexed.loc["N", "pearson_r"]) if bool(indexed.loc["N", "defined"]) else np.nan
    if not bool(s_row["defined"]):
        return {"verdict": "not testable", "sentence": f"r(accuracy, {key}) is undefined", "r_S": np.nan,
                "ci_S": ci, "r_N": r_n}
    if balanced:
        significant, how = _significant(s_row.to_dict())
        near_zero = not (r_s > 0 and significant)
        verdict = "not held" if near_zero else "held"
        sentence = (f"r(accuracy, S α={alpha:g}) = {r_s:.2f} ({how}): "
                    + ("near 0 or negative" if near_zero else "clearly positive"))
    else:
        above = np.isfinite(r_n) and r_s > r_n
        verdict = "held" if above else "not held"
        sentence = (f"r(accuracy, S α={alpha:g}) = {r_s:.2f} is {'above' if above else 'not above'} "
                    f"r(accuracy, N) = {r_n:.2f}")
    return {"verdict": verdict, "sentence": sentence, "r_S": r_s, "ci_S": ci, "r_N": r_n}


# ----------------------------------------------------------------------------------------------------------------
# SPEC §5: grids of training runs (methods × seeds)
# ----------------------------------------------------------------------------------------------------------------
def _run_folder_name(method: str, seed: int) -> str:
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in method)
    return f"{safe}-seed{seed}"


def run_methods(methods: Mapping[str, Mapping], seeds: Sequence[int], base: Mapping, out_dir, *,
                preset: str | None = None, progress: bool = False, reuse: bool = False) -> pd.DataFrame:
    """Train every method × seed and return one row per run with its final metrics.

    ``methods``: {name → TrainConfig overrides, e.g. {"loss": "ldam", "reweight": "drw"}}; ``base``: overrides
    shared by all (dataset, epochs, model, ...); ``preset``: a ``train.PRESETS`` name under both. Runs go to
    ``<out_dir>/<method>-seed<k>/``. An existing run folder is replaced unless ``reuse`` and it finished with
    the same settings (then it is loaded). Returns columns method, seed, run_dir, top1, many, medium, few,
    epochs, seconds (training time summed over epochs).
    """
    from .train import load_run, make_config, train

    out = prepare_out_dir(out_dir)
    rows = []
    for name, overrides in methods.items():
        for seed in seeds:
            config = make_config(preset, **{**dict(base), **dict(overrides), "seed": int(seed)})
            folder = out / _run_folder_name(name, seed)
            finished = (folder / "per_class.csv").exists()
            if finished and reuse and _same_config(folder, config):
                pass
            else:
                if folder.exists():
                    shutil.rmtree(folder)
                train(config, out_dir=folder, progress=progress)
            run = load_run(folder)
            last = run["metrics"].iloc[-1]
            rows.append({"method": name, "seed": int(seed), "run_dir": str(folder), "top1": float(last["top1"]),
                         "many": float(last["many"]), "medium": float(last["medium"]), "few": float(last["few"]),
                         "epochs": int(last["epoch"]), "seconds": float(run["metrics"]["seconds"].sum())})
    return pd.DataFrame(rows)


def _same_config(folder: Path, config) -> bool:
    saved = json.loads((folder / "config.json").read_text())["config"]
    wanted = json.loads(json.dumps(config.to_dict(), default=_json_default))
    ignored = {"device", "data_root", "eval_batch_size"}
    return {k: v for k, v in saved.items() if k not in ignored} == {k: v for k, v in wanted.items()
                                                                     if k not in ignored}


def learning_curves(results: pd.DataFrame) -> pd.DataFrame:
    """Per-epoch metrics of every run in ``results`` (from :func:`run_methods`): columns method, seed, epoch,
    loss, lr, top1, many, medium, few."""
    frames = []
    for row in results.itertuples(index=False):
        metrics = pd.read_csv(Path(row.run_dir) / "metrics.csv")
        metrics.insert(0, "seed", row.seed)
        metrics.insert(0, "method", row.method)
        frames.append(metrics.drop(columns=["seconds"], errors="ignore"))
    return pd.concat(frames, ignore_index=True)


def group_table(results: pd.DataFrame, *, many: int = 100, few: int = 20) -> pd.DataFrame:
    """Final per-run top-1 and many/medium/few recomputed from each run's ``per_class.csv`` with thresholds
    ``many`` / ``few`` (training images; the paper's are 100 / 20). Columns method, seed, top1, overall (mean of
    per-class accuracies), many, medium, few, and the number of classes per group (n_many, n_medium, n_few)."""
    rows = []
    for row in results.itertuples(index=False):
        per_class = pd.read_csv(Path(row.run_dir) / "per_class.csv")
        counts = per_class["train_count"].to_numpy()
        groups = group_accuracy(per_class["accuracy"].to_numpy(), counts, many=many, few=few)
        rows.append({"method": row.method, "seed": row.seed, "top1": row.top1, **groups,
                     "n_many": int((counts > many).sum()), "n_medium": int(((counts >= few) & (counts <= many)).sum()),
                     "n_few": int((counts < few).sum())})
    return pd.DataFrame(rows)


def summary_table(groups: pd.DataFrame, *, order: Sequence[str] | None = None, decimals: int = 1) -> pd.DataFrame:
    """Mean ± sd over seeds, in percent, of top-1 and many/medium/few per method (``order`` keeps the methods'
    order, default as first seen)."""
    percent = groups.copy()
    for column in ("top1", "many", "medium", "few"):
        percent[column] = 100 * percent[column]
    table = mean_sd_table(percent, ["method"], ["top1", "many", "medium", "few"], decimals=decimals)
    order = list(order) if order is not None else list(dict.fromkeys(groups["method"]))
    return table.set_index("method").loc[order].reset_index()


def compare_pairs(results: pd.DataFrame, pairs: Mapping[str, str], *, metric: str = "top1") -> pd.DataFrame:
    """Paired comparison (same seeds) of each ``with → without`` method pair on ``metric``.

    Returns columns method, baseline, n_seeds, mean_with, mean_without, diff (mean over seeds of the per-seed
    difference), sd_diff (sample sd, NaN for one seed) and verdict: TRANSCRIPTION §5.3 — falsified if DSB-X ≤ X
    averaged over seeds → "held" when diff > 0, else "not held".
    """
    rows = []
    for method, baseline in pairs.items():
        a = results[results["method"] == method].set_index("seed")[metric]
        b = results[results["method"] == baseline].set_index("seed")[metric]
        seeds = sorted(set(a.index) & set(b.index))
        if not seeds:
            raise ValueError(f"no common seed between {method!r} and {baseline!r}")
        diff = a.loc[seeds].to_numpy() - b.loc[seeds].to_numpy()
        rows.append({"method": method, "baseline": baseline, "n_seeds": len(seeds),
                     "mean_with": float(a.loc[seeds].mean()), "mean_without": float(b.loc[seeds].mean()),
                     "diff": float(diff.mean()), "sd_diff": float(diff.std(ddof=1)) if len(seeds) > 1 else np.nan,
                     "verdict": "held" if diff.mean() > 0 else "not held"})
    return pd.DataFrame(rows)


def pair_claims(pairs: pd.DataFrame, *, claim: str, paper: Mapping[str, str], data: str, spec: str
                ) -> tuple[list[dict], list[str]]:
    """Claim records and markdown lines for the rows of :func:`compare_pairs` (one each per pair).

    ``claim``: a template with ``{method}`` and ``{baseline}`` (e.g. ``"{method} beats {baseline}"``);
    ``paper``: what the paper reports, by method (missing → "not reported for this loss"); ``data``: on what
    the numbers were measured. Top-1 values are shown in %, the difference in points with its sd over seeds.
    """
    claims, lines = [], []
    for row in pairs.itertuples(index=False):
        sd = f", sd over seeds {100 * row.sd_diff:.2f}" if np.isfinite(row.sd_diff) else ", one seed"
        text = (f"{row.baseline} {100 * row.mean_without:.2f} % → {row.method} {100 * row.mean_with:.2f} % "
                f"({100 * row.diff:+.2f} points{sd})")
        lines.append(f"- **{row.method} vs {row.baseline}: claim {row.verdict}.** {text}.")
        claims.append(claim_record(
            claim=claim.format(method=row.method, baseline=row.baseline), spec=spec,
            paper=paper.get(row.method, "not reported for this loss"), measured=text, verdict=row.verdict,
            data=data,
            rule="§5.3: falsified if DSB-X ≤ X on overall top-1 under the same seed and schedule, averaged over "
                 "seeds",
            numbers={"with": row.mean_with, "without": row.mean_without, "diff": row.diff,
                     "sd_diff": row.sd_diff}))
    return claims, lines


def static_dsb_weights(run_dir, *, alpha: float, normalize: str = "mean1", source: str = "train",
                       pool_dim: int | None = None) -> tuple[np.ndarray, pd.DataFrame]:
    """Static semantic-scale-balanced class weights a ∝ 1/S from a finished (e.g. plain CE) run.

    ``source="train"``: the run's final model embeds its own training images (no test data involved);
    ``"test"``: the saved test embeddings. ``pool_dim``: average-pool the embeddings first (the paper's 64-d
    pool; None keeps the full dimension). Returns (weights (C,) from ``dsb_class_weights(S, normalize)``, the
    ``quantify_imbalance`` table at ``alpha`` with the weights as column ``weight``).
    """
    from .scale import pool_features
    from .train import load_run

    run = load_run(run_dir)
    if source == "train":
        images = training_images(run)
        features, labels = embed_run(run_dir, images), images.labels
        names = images.classes
    elif source == "test":
        features, labels = run["test_features"], run["test_labels"]
        names = run["per_class"]["name"].tolist() if run["per_class"] is not None else None
    else:
        raise ValueError(f"source must be 'train' or 'test', got {source!r}")
    if pool_dim is not None:
        features = pool_features(features, pool_dim)
    table = quantify_imbalance(features, labels, alpha=alpha, class_names=names)
    weights = dsb_class_weights(table["imbalance_scale"].to_numpy(), normalize)
    table["weight"] = weights
    return weights, table


def static_weighting_grid(losses: Sequence[str], seeds: Sequence[int], base: Mapping, out_dir, *,
                          preset: str | None = None, alpha: float = 2.0, normalize: str = "mean1",
                          source: str = "train", pool_dim: int | None = 64, progress: bool = False
                          ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The general scheme of SPEC §5 with *static* semantic-scale weights: every base loss with and without
    a ∝ 1/S, same seeds.

    For each seed, a plain cross-entropy model is trained first (it is also the "ce" row when "ce" is in
    ``losses``); S comes from its features (:func:`static_dsb_weights` with ``alpha``, ``normalize``,
    ``source``, ``pool_dim``); then every loss is trained plain (``reweight="none"``) and weighted
    (``reweight="static"`` with those class weights). Returns (results: one row per run as
    :func:`run_methods` plus columns loss and weighted, sorted by loss order then weighted; weights: one row per
    seed × class with S and the weight).
    """
    out = prepare_out_dir(out_dir)
    plain_losses = list(dict.fromkeys(["ce", *losses]))
    plain = run_methods({loss: {"loss": loss, "reweight": "none"} for loss in plain_losses}, seeds, base,
                        out, preset=preset, progress=progress)
    frames, weight_rows = [plain[plain["method"].isin(losses)]], []
    for seed in seeds:
        ce_dir = plain[(plain["method"] == "ce") & (plain["seed"] == seed)]["run_dir"].iloc[0]
        weights, table = static_dsb_weights(ce_dir, alpha=alpha, normalize=normalize, source=source,
                                            pool_dim=pool_dim)
        weight_rows.append(table.assign(seed=seed))
        weighted = {f"{loss} + S-weights": {"loss": loss, "reweight": "static",
                                            "class_weights": [float(w) for w in weights]} for loss in losses}
        frames.append(run_methods(weighted, [seed], base, out, preset=preset, progress=progress))
    results = pd.concat(frames, ignore_index=True)
    results["weighted"] = results["method"].str.endswith(" + S-weights")
    results["loss"] = results["method"].str.replace(" + S-weights", "", regex=False)
    order = {loss: i for i, loss in enumerate(losses)}
    results = results.sort_values(["loss", "weighted", "seed"], key=lambda c: c.map(order) if c.name == "loss"
                                  else c).reset_index(drop=True)
    return results, pd.concat(weight_rows, ignore_index=True)


def weights_history(run_dir, class_names: Sequence[str] | None = None) -> pd.DataFrame:
    """A DSB run's logged refreshes (``weights.csv``) in long form: epoch, iteration, class, name, S, a.
    Empty when the run never re-weighted (all epochs ≤ n)."""
    path = Path(run_dir) / "weights.csv"
    columns = ["epoch", "iteration", "class", "name", "S", "a"]
    if not path.exists():
        return pd.DataFrame(columns=columns)
    wide = pd.read_csv(path)
    classes = sorted(int(c[2:]) for c in wide.columns if c.startswith("S_"))
    rows = []
    for c in classes:
        part = wide[["epoch", "iteration"]].copy()
        part["class"] = c
        part["name"] = class_names[c] if class_names is not None else str(c)
        part["S"] = wide[f"S_{c}"]
        part["a"] = wide[f"a_{c}"]
        rows.append(part)
    return pd.concat(rows, ignore_index=True)[columns].sort_values(["iteration", "class"]).reset_index(drop=True)


# ----------------------------------------------------------------------------------------------------------------
# the report (05_report)
# ----------------------------------------------------------------------------------------------------------------
def verdict_counts(claims: pd.DataFrame) -> str:
    """"k of n claims held (…)" for a :func:`read_claims` frame."""
    counts = claims["verdict"].value_counts()
    parts = [f"{int(counts.get(v, 0))} {v}" for v in VERDICTS if counts.get(v, 0)]
    return f"{int(counts.get('held', 0))} of {len(claims)} checks held" + (f" ({', '.join(parts)})" if parts else "")


def build_report(run_dir, *, exclude: Iterable = (), title: str = "semscale report") -> str:
    """The markdown of ``report.md`` for a run folder: run summary (``summary.json`` when the batch runner wrote
    one), every checked claim beside what the paper reports and the verdict, the tables and figures the notebooks
    listed in their ``claims.json`` (linked relative to ``run_dir``), the paper's reference numbers (SPEC §7) and
    the rules used."""
    root = Path(run_dir)
    outputs = read_outputs(root, exclude=exclude)
    claims = read_claims(root, exclude=exclude)
    lines = [f"# {title}", "", f"Run folder: `{root.resolve().name}`. Paper: Ma et al., *Delving into Semantic Scale "
             "Imbalance*, ICLR 2023. Verdicts follow the falsification rules of the spec (TRANSCRIPTION §5); "
             "thresholds the paper does not give are ours and stated with each rule.", ""]
    summary_path = root / "summary.json"
    if summary_path.exists():
        summary = json.loads(summary_path.read_text())
        lines += ["## What ran", "", f"Profile `{summary.get('profile')}`"
                  + (f", grid `{summary.get('grid')}`" if summary.get("grid") else "") + ".", ""]
        ran = pd.DataFrame([{"notebook": e.get("notebook"), "point": e.get("point") or "",
                             "status": e.get("status"), "seconds": float(e.get("duration_s") or 0),
                             "error": e.get("error") or ""} for e in summary.get("entries", [])])
        if len(ran):
            lines += [markdown_table(ran, decimals=0), ""]
    lines += ["## Claims", ""]
    if len(claims):
        table = claims[["notebook", "claim", "data", "paper", "measured", "verdict"]].rename(
            columns={"paper": "the paper reports", "measured": "we measured"})
        lines += [verdict_counts(claims) + ".", "", markdown_table(table), ""]
    else:
        lines += ["No claim was checked: no `claims.json` found under the run folder.", ""]
    for saved in outputs:
        folder = Path(saved["folder"])
        rel = folder.relative_to(root)
        pieces = []
        for entry in saved.get("tables", []):
            path = folder / entry["file"]
            if path.exists():
                pieces += [f"**{entry['title']}** (`{rel / entry['file']}`)", "",
                           markdown_table(pd.read_csv(path)), ""]
        for name in saved.get("figures", []):
            if (folder / name).exists():
                pieces += [f"![{name}]({(rel / name).as_posix()})", ""]
        if pieces:
            lines += [f"## {saved.get('notebook', rel.name)} (`{rel}`)", "", *pieces]
    reference = pd.DataFrame([{"data": d, "model": m, **values} for (d, m), values in TABLE1_REFERENCE.items()])
    lines += ["## Reference numbers (the paper's, SPEC §7)", "",
              "Table 1, Pearson r(per-class accuracy, ·); N and E_n on balanced CIFAR-10 are undefined (constant).",
              "", markdown_table(reference, decimals=4), ""]
    lines += [f"- {text}" for text in PAPER_NUMBERS.values()] + [""]
    if len(claims):
        lines += ["## Rules used", ""]
        for rule in dict.fromkeys(claims["rule"]):
            lines.append(f"- {rule}")
        lines.append("")
    return "\n".join(lines)


__all__ = [
    "average_tables", "build_report", "claim_record", "CLAIMS_FILE", "compare_pairs", "concavity",
    "correlation_sources", "correlation_study", "correlation_verdicts", "describe_r", "embed_run", "fit_stats", "fmt",
    "group_table", "imbalance_table", "learning_curves", "marginal_effect_correlations", "marginal_effect_verdict",
    "markdown_table", "nested_sample_volumes", "pair_claims", "PAPER_DSB_GAINS", "PAPER_NUMBERS", "prepare_out_dir",
    "read_claims", "read_outputs", "require_versions", "run_methods", "saturation_point", "save_and_show", "SOURCES",
    "source_slug", "static_dsb_weights", "static_weighting_grid", "summary_table", "table1_comparison",
    "TABLE1_REFERENCE", "thumbnail", "train_subset", "training_images", "verdict_counts", "VERDICTS", "volume_totals",
    "weights_history", "write_claims", "write_json",
]
