"""Class-weight rules: every way a run weights its loss per class, behind one interface and one registry.

The trainer builds one rule per run (:func:`build_weighting`) and asks it for weights at two moments only:

- :meth:`WeightRule.epoch_weights` at the start of every epoch (1-based): ``(C,)`` weights, or ``None`` for an
  unweighted loss;
- :meth:`WeightRule.step` after every forward pass, with the batch's embeddings: new ``(C,)`` weights when the
  rule changed them this iteration, else ``None`` (keep the current ones).

The rules (:data:`WEIGHTINGS`):

==========  ==========================================================================  =====================
name        weights                                                                     default reduction
==========  ==========================================================================  =====================
``none``    none                                                                        —
``cb``      class-balanced 1/E_n (Cui et al., CVPR 2019) in every epoch                 ``mean``
``drw``     none until ``drw_start`` of the epochs, then class-balanced (Cao et al.)     ``weighted-mean``
``static``  fixed weights given by the user (e.g. 1/S from a trained model)             ``mean``
``dsb``     a ∝ 1/S refreshed from the storage pool in stage 3 (Eq. 4, Algorithm 2)     ``mean``
==========  ==========================================================================  =====================

The reduction is how the loss averages the weighted per-sample losses over a batch (see
:class:`~semscale_lib.losses.ClassWeighting`): ``mean`` = mean of w_y·ℓ, ``weighted-mean`` = Σ w_y ℓ / Σ w_y as
``F.cross_entropy(weight=w)`` — the reduction of the LDAM-DRW reference code. Why each default: docs/paper-notes.md
§7 and §9.
"""
from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch

from .checks import require
from .dsb import NORMALIZATIONS, DSBSettings, DynamicReweighting
from .losses import as_counts
from .scale import effective_number


def class_balanced_weights(class_counts, beta: float = 0.9999) -> torch.Tensor:
    """Class-balanced weights of Cui et al. (CVPR 2019): ``w_j ∝ 1/E_{n_j} = (1-β)/(1-β^{n_j})``.

    Normalised so that ``Σ_j w_j = C`` (their convention). ``class_counts``: ``(C,)``, all > 0; ``0 <= β < 1``.
    Returns a float32 tensor ``(C,)``.
    """
    counts = as_counts(class_counts)
    if not 0.0 <= beta < 1.0:
        raise ValueError(f"beta must be in [0, 1), got {beta}")
    w = 1.0 / effective_number(counts, beta)
    return torch.tensor(w * (counts.size / w.sum()), dtype=torch.float32)


def dsb_class_weights(imbalance_scales, normalize: str = "sum1"):
    """Semantic-scale-balanced class weights ``a_i ∝ 1/S_i`` (Eq. 4; normalisation: docs/paper-notes.md §7).

    ``imbalance_scales``: ``S`` of shape ``(C,)`` (semantic scale with inter-class interference, Sec. 3.4.1);
    every entry finite and > 0, otherwise :class:`ValueError` names the offending class indices. Returns the
    input's type (``np.ndarray`` float64, or a tensor with the input's floating dtype and device).
    ``normalize``: ``"sum1"`` (Σ a = 1, the paper's text), ``"none"`` (Eq. 4 as printed), ``"mean1"`` (Σ a = C,
    ours: keeps the loss on the unweighted scale). The normalised weights come from S_min/S ∈ (0, 1], which cannot
    overflow however small an S is; with ``"none"`` a 1/S beyond float64 is a ValueError.

    A tensor is computed on its device in float64 and never read back (DSB calls this at every refresh; on CUDA
    the checks are :func:`~semscale_lib.checks.require`'s). Its Σ is torch's, not numpy's pairwise sum, so the
    two paths may differ in the last bit of float64.
    """
    if normalize not in NORMALIZATIONS:
        raise ValueError(f"normalize must be one of {NORMALIZATIONS}, got {normalize!r}")
    if isinstance(imbalance_scales, torch.Tensor):
        return _dsb_class_weights_tensor(imbalance_scales, normalize)
    s = np.asarray(imbalance_scales).astype(np.float64)
    if s.ndim != 1 or s.size == 0:
        raise ValueError(f"imbalance_scales must be a non-empty 1-D array, got shape {s.shape}")
    bad = np.flatnonzero(~np.isfinite(s) | (s <= 0))
    if bad.size:
        raise ValueError(f"semantic scales must be finite and > 0; offending class indices: {bad.tolist()}")
    if normalize == "none":
        with np.errstate(over="ignore"):
            a = 1.0 / s
        if not np.all(np.isfinite(a)):
            raise ValueError(f"1/S overflows float64 for classes {np.flatnonzero(~np.isfinite(a)).tolist()} (S = "
                             f"{s[~np.isfinite(a)].min():g}); use normalize='sum1' or 'mean1'")
    else:
        a = s.min() / s        # ∝ 1/S, largest weight 1; Σ a ≥ 1, so the division below is safe
        a = a / a.sum() if normalize == "sum1" else a * (a.size / a.sum())
    return a


def _dsb_class_weights_tensor(imbalance_scales: torch.Tensor, normalize: str) -> torch.Tensor:
    """:func:`dsb_class_weights` of a tensor ``(C,)``, on its device: the same formulas and messages."""
    dtype = imbalance_scales.dtype if imbalance_scales.is_floating_point() else torch.float32
    s = imbalance_scales.detach().to(torch.float64)
    if s.ndim != 1 or s.numel() == 0:
        raise ValueError(f"imbalance_scales must be a non-empty 1-D array, got shape {tuple(s.shape)}")
    bad = ~torch.isfinite(s) | (s <= 0)
    require(~bad.any(), "semantic scales must be finite and > 0",
            lambda: f"; offending class indices: {torch.nonzero(bad).flatten().tolist()}")
    if normalize == "none":
        a = 1.0 / s
        overflow = ~torch.isfinite(a)
        require(~overflow.any(), "1/S overflows float64",
                lambda: f" for classes {torch.nonzero(overflow).flatten().tolist()} "
                        f"(S = {float(s[overflow].min()):g}); use normalize='sum1' or 'mean1'")
    else:
        a = s.min() / s        # ∝ 1/S, largest weight 1; Σ a ≥ 1, so the division below is safe
        a = a / a.sum() if normalize == "sum1" else a * torch.div(a.numel(), a.sum())
    return a.to(dtype)


# ----------------------------------------------------------------------------------------------------------------
# the rules
# ----------------------------------------------------------------------------------------------------------------
class WeightRule:
    """A class-weight rule for one run. Subclasses override what they use; the base is "unweighted"."""
    name: ClassVar[str] = "none"
    default_reduction: ClassVar[str] = "mean"
    uses_features: ClassVar[bool] = False   # True: the trainer must pass the batch's embeddings to step()

    @classmethod
    def from_config(cls, config, counts, dataset_size: int, device) -> "WeightRule":
        """The rule for a run's ``config`` and training ``counts`` ``(C,)`` of ``dataset_size`` samples."""
        return cls()

    def epoch_weights(self, epoch: int) -> torch.Tensor | None:
        """Weights ``(C,)`` at the start of 1-based ``epoch`` (``None``: unweighted)."""
        return None

    def step(self, epoch: int, features: torch.Tensor, labels: torch.Tensor,
             indices: torch.Tensor | None = None) -> torch.Tensor | None:
        """After a forward pass: embeddings ``(B, D)``, labels ``(B,)``, training indices ``(B,)``. Returns new
        weights ``(C,)`` when they changed this iteration, else ``None``."""
        return None

    def end_epoch(self) -> None:
        """Called once after the last iteration of every epoch."""

    def log_rows(self) -> list[dict]:
        """Rows for the run's ``weights.csv`` (weights over time); empty for rules that never change."""
        return []

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


class ClassBalanced(WeightRule):
    """Class-balanced weights (:func:`class_balanced_weights` with ``beta``) from the first epoch on."""
    name = "cb"

    def __init__(self, counts, beta: float = 0.9999):
        self.weights = class_balanced_weights(counts, beta)

    @classmethod
    def from_config(cls, config, counts, dataset_size, device):
        return cls(counts, config.weighting.cb_beta)

    def epoch_weights(self, epoch: int) -> torch.Tensor | None:
        return self.weights


def drw_start_epoch(fraction: float, epochs: int) -> int:
    """The last unweighted epoch of DRW: ``round(fraction · epochs)`` (160 of 200 in Cao et al.), but never the last
    epoch [ours]: a short run (e.g. 2 epochs × 0.8 → 2) would otherwise never re-weight and silently be the plain
    loss. One epoch is re-weighted at least whenever ``epochs`` ≥ 2."""
    return max(0, min(round(fraction * epochs), epochs - 1))


class DeferredReweighting(ClassBalanced):
    """DRW (Cao et al., NeurIPS 2019): unweighted for epochs ≤ ``start_epoch``, class-balanced after."""
    name = "drw"
    default_reduction = "weighted-mean"

    def __init__(self, counts, beta: float = 0.9999, *, start_epoch: int):
        super().__init__(counts, beta)
        self.start_epoch = int(start_epoch)

    @classmethod
    def from_config(cls, config, counts, dataset_size, device):
        start = drw_start_epoch(config.weighting.drw_start, config.optim.epochs)
        return cls(counts, config.weighting.cb_beta, start_epoch=start)

    def epoch_weights(self, epoch: int) -> torch.Tensor | None:
        return self.weights if epoch > self.start_epoch else None


class StaticWeights(WeightRule):
    """Fixed user-given weights ``(C,)`` (finite, ≥ 0) in every epoch."""
    name = "static"

    def __init__(self, weights):
        w = torch.as_tensor(np.asarray(weights, dtype=np.float64), dtype=torch.float32)
        if w.ndim != 1 or w.numel() == 0 or not torch.all(torch.isfinite(w) & (w >= 0)):
            raise ValueError("static class weights must be a non-empty list of finite numbers ≥ 0")
        self.weights = w

    @classmethod
    def from_config(cls, config, counts, dataset_size, device):
        if config.weighting.class_weights is None or len(config.weighting.class_weights) != len(counts):
            raise ValueError(f"reweight='static' needs class_weights: {len(counts)} numbers ≥ 0, one per class")
        return cls(config.weighting.class_weights)

    def epoch_weights(self, epoch: int) -> torch.Tensor | None:
        return self.weights


class SemanticScaleBalanced(WeightRule):
    """Dynamic semantic-scale-balanced re-weighting (Sec. 4.2, Algorithm 2): the storage pool gives S in stage 3,
    the weights are ``dsb_class_weights(S, settings.normalize)``; unweighted before the first refresh. Every
    ``settings.log_every``-th refresh is logged (epoch, iteration, S_c, a_c): its S stays on the device until
    :meth:`log_rows` / :meth:`state_dict` (once per epoch in the trainer) read it back, so that no training iteration
    waits for the device, and a_c is then ``dsb_class_weights`` of the logged S as an array (float64; the float32
    weights the loss used are computed in torch from the same S)."""
    name = "dsb"
    uses_features = True

    def __init__(self, num_classes: int, settings: DSBSettings, *, dataset_size: int, device="cpu"):
        self.settings = settings
        self.dynamic = DynamicReweighting(num_classes, settings, dataset_size=dataset_size, device=device)
        self.current: torch.Tensor | None = None
        self.refreshes = 0
        self.rows: list[dict] = []
        self.pending: list[tuple[int, int, torch.Tensor]] = []   # (epoch, iteration, S) not yet in rows

    @classmethod
    def from_config(cls, config, counts, dataset_size, device):
        return cls(len(counts), config.weighting.dsb, dataset_size=dataset_size, device=device)

    def epoch_weights(self, epoch: int) -> torch.Tensor | None:
        return self.current

    def step(self, epoch, features, labels, indices=None):
        scales = self.dynamic.step(epoch, features.float(), labels, indices)
        if scales is None:
            return None
        self.current = dsb_class_weights(scales, self.settings.normalize).float()
        if self.refreshes % self.settings.log_every == 0:
            self.pending.append((epoch, self.dynamic.iteration, scales))
        self.refreshes += 1
        return self.current

    def end_epoch(self) -> None:
        self.dynamic.pool.rebuild()

    def log_rows(self) -> list[dict]:
        for epoch, iteration, scales in self.pending:
            s = scales.cpu().numpy()
            self.rows.append(weights_log_row(epoch, iteration, dsb_class_weights(s, self.settings.normalize), s))
        self.pending.clear()
        return self.rows

    def state_dict(self) -> dict:
        return {"dynamic": self.dynamic.state_dict(), "current": self.current, "refreshes": self.refreshes,
                "rows": list(self.log_rows())}

    def load_state_dict(self, state: dict) -> None:
        self.dynamic.load_state_dict(state["dynamic"])
        self.current, self.refreshes, self.rows = state["current"], state["refreshes"], list(state["rows"])
        self.pending = []


def weights_log_row(epoch: int, iteration: int, weights, scales) -> dict:
    """One row of ``weights.csv``: epoch, iteration, then S_c and a_c for every class (``(C,)`` arrays or
    tensors)."""
    row = {"epoch": epoch, "iteration": iteration}
    row.update({f"S_{c}": float(v) for c, v in enumerate(torch.as_tensor(scales).cpu().numpy())})
    row.update({f"a_{c}": float(v) for c, v in enumerate(torch.as_tensor(weights).cpu().numpy())})
    return row


# ----------------------------------------------------------------------------------------------------------------
# registry
# ----------------------------------------------------------------------------------------------------------------
#: name → rule class; each builds itself with ``from_config(config, counts, dataset_size, device)`` from a
#: :class:`~semscale_lib.training.TrainConfig` (its ``cb_beta``, ``drw_start``, ``epochs``, ``class_weights``,
#: ``dsb``).
WEIGHTINGS: dict[str, type[WeightRule]] = {
    rule.name: rule for rule in (WeightRule, ClassBalanced, DeferredReweighting, StaticWeights, SemanticScaleBalanced)}


def build_weighting(config, counts, *, dataset_size: int, device="cpu") -> WeightRule:
    """The rule ``config.weighting.rule`` names, for a training set with ``counts`` ``(C,)`` and ``dataset_size``
    samples. Unknown name → :class:`ValueError` listing :data:`WEIGHTINGS`."""
    if config.weighting.rule not in WEIGHTINGS:
        raise ValueError(f"unknown reweight {config.weighting.rule!r}; valid: {', '.join(WEIGHTINGS)}")
    return WEIGHTINGS[config.weighting.rule].from_config(config, counts, dataset_size, device)


def default_reduction(reweight: str) -> str:
    """The batch reduction a rule uses unless the run says otherwise (table in the module docstring)."""
    if reweight not in WEIGHTINGS:
        raise ValueError(f"unknown reweight {reweight!r}; valid: {', '.join(WEIGHTINGS)}")
    return WEIGHTINGS[reweight].default_reduction


__all__ = ["NORMALIZATIONS", "WEIGHTINGS", "WeightRule", "ClassBalanced", "DeferredReweighting", "StaticWeights",
           "SemanticScaleBalanced", "build_weighting", "class_balanced_weights", "default_reduction",
           "drw_start_epoch", "dsb_class_weights", "weights_log_row"]
