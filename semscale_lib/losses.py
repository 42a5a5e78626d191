"""Classification losses for long-tailed learning and the paper's semantic-scale re-weighting (SPEC §5).

Conventions
-----------
- Every loss is an ``nn.Module`` called as ``loss(logits, targets)`` with ``logits`` ``(B, C)`` float and
  ``targets`` ``(B,)`` int64 class indices. With ``reduction="none"`` it returns the per-sample losses ``(B,)``
  (nats); with ``reduction="mean"`` (default) their mean, a scalar.
- Base losses carry no class weights (unless the published loss is defined with them). Class-level weighting is
  the wrapper :class:`ClassWeighting`: ``loss_b = w[y_b] * base(z_b, y_b)`` averaged over the batch.
- :class:`SemanticScaleWeighting` is the paper's dynamic semantic-scale-balanced (DSB) scheme, Eq. 4:
  ``w_i ∝ 1/S_i`` (:func:`dsb_class_weights`).
- Focal loss with class weights, ``-α_t (1-p_t)^γ log p_t`` with ``α_t = a_y`` (Lin et al.; the paper's
  "Focal: α_t = 1/S_y"), is exactly ``ClassWeighting(FocalLoss(gamma, reduction="none"), a)``.
"""
from __future__ import annotations

import inspect
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .scale import effective_number

__all__ = [
    "CrossEntropy",
    "FocalLoss",
    "LDAMLoss",
    "BalancedSoftmaxLoss",
    "LogitAdjustedLoss",
    "ClassWeighting",
    "SemanticScaleWeighting",
    "class_balanced_weights",
    "dsb_class_weights",
    "drw_weights",
    "LOSSES",
    "build_loss",
]

_REDUCTIONS = ("mean", "none")


def _as_counts(class_counts, name: str = "class_counts") -> np.ndarray:
    """Validate per-class training counts: 1-D, finite, all > 0. Returns float64 array ``(C,)``."""
    counts = np.asarray(
        class_counts.detach().cpu().numpy() if isinstance(class_counts, torch.Tensor) else class_counts,
        dtype=np.float64,
    )
    if counts.ndim != 1 or counts.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D sequence, got shape {counts.shape}")
    bad = np.flatnonzero(~np.isfinite(counts) | (counts <= 0))
    if bad.size:
        raise ValueError(f"{name} must be finite and > 0; offending class indices: {bad.tolist()}")
    return counts


class _PerSampleLoss(nn.Module):
    """Base: subclasses implement :meth:`per_sample` ``(B, C), (B,) -> (B,)``; this applies the reduction."""

    def __init__(self, reduction: str = "mean"):
        super().__init__()
        if reduction not in _REDUCTIONS:
            raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")
        self.reduction = reduction

    def per_sample(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if logits.ndim != 2 or targets.ndim != 1 or logits.shape[0] != targets.shape[0]:
            raise ValueError(f"expected logits (B, C) and targets (B,), got {tuple(logits.shape)} and "
                             f"{tuple(targets.shape)}")
        losses = self.per_sample(logits, targets)
        return losses.mean() if self.reduction == "mean" else losses

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"


class _CountAdjusted(_PerSampleLoss):
    """Holds ``log n_j`` (``(C,)`` buffer) and checks that the logits have ``C`` columns."""

    def __init__(self, class_counts, reduction: str = "mean"):
        super().__init__(reduction)
        counts = _as_counts(class_counts)
        self.register_buffer("log_counts", torch.tensor(np.log(counts), dtype=torch.float32))

    def _check_classes(self, logits: torch.Tensor) -> None:
        if logits.shape[1] != self.log_counts.numel():
            raise ValueError(f"logits have {logits.shape[1]} classes but the loss was built for "
                             f"{self.log_counts.numel()}")


# ----------------------------------------------------------------------------------------------------------------
# Base losses
# ----------------------------------------------------------------------------------------------------------------
class CrossEntropy(_PerSampleLoss):
    """Softmax cross-entropy ``-log softmax(z)_y``."""

    def per_sample(self, logits, targets):
        return F.cross_entropy(logits, targets, reduction="none")


class FocalLoss(_PerSampleLoss):
    """Focal loss (Lin et al. 2017) without α: ``FL = -(1 - p_t)^γ log p_t``, ``p_t = softmax(z)_y``.

    Computed from ``log_softmax`` (``1 - p_t = -expm1(log p_t)``) so it is stable for confident predictions.
    ``gamma=0`` is cross-entropy. For the α-balanced form wrap it in :class:`ClassWeighting`.
    """

    def __init__(self, gamma: float = 1.0, reduction: str = "mean"):
        super().__init__(reduction)
        if gamma < 0:
            raise ValueError(f"gamma must be >= 0, got {gamma}")
        self.gamma = float(gamma)

    def per_sample(self, logits, targets):
        log_pt = F.log_softmax(logits, dim=1).gather(1, targets[:, None]).squeeze(1)
        if self.gamma == 0:
            return -log_pt
        one_minus_pt = (-torch.expm1(log_pt)).clamp_min(0.0)
        return -one_minus_pt.pow(self.gamma) * log_pt

    def extra_repr(self) -> str:
        return f"gamma={self.gamma}, reduction={self.reduction!r}"


class LDAMLoss(_CountAdjusted):
    """Label-distribution-aware margin loss (Cao et al. 2019).

    Margins ``Δ_j = K / n_j^{1/4}`` with ``K`` chosen so that ``max_j Δ_j = max_margin``; the target logit is
    lowered by ``Δ_y``, all logits are multiplied by ``scale`` and cross-entropy is applied:
    ``CE(s · (z - Δ_y e_y), y)``. Meant for a cosine classifier (``normalized_classifier=True`` in
    :func:`semscale_lib.models.build_model`), where logits lie in [-1, 1]. ``margins``: ``(C,)`` buffer.
    """

    def __init__(self, class_counts, max_margin: float = 0.5, scale: float = 30.0, reduction: str = "mean"):
        super().__init__(class_counts, reduction)
        counts = _as_counts(class_counts)
        raw = counts ** -0.25
        self.register_buffer("margins", torch.tensor(raw * (max_margin / raw.max()), dtype=torch.float32))
        self.max_margin = float(max_margin)
        self.scale = float(scale)

    def per_sample(self, logits, targets):
        self._check_classes(logits)
        shift = F.one_hot(targets, logits.shape[1]).to(logits.dtype) * self.margins.to(logits.dtype)[targets, None]
        return F.cross_entropy(self.scale * (logits - shift), targets, reduction="none")

    def extra_repr(self) -> str:
        return f"max_margin={self.max_margin}, scale={self.scale}, reduction={self.reduction!r}"


class BalancedSoftmaxLoss(_CountAdjusted):
    """Balanced softmax (Ren et al. 2020): cross-entropy on ``z_j + log n_j`` (``n_j`` training counts)."""

    def per_sample(self, logits, targets):
        self._check_classes(logits)
        return F.cross_entropy(logits + self.log_counts.to(logits.dtype), targets, reduction="none")


class LogitAdjustedLoss(_CountAdjusted):
    """Logit-adjusted loss (Menon et al. 2021): cross-entropy on ``z_j + τ log π_j``, ``π_j = n_j / Σ n``.

    With ``tau=1`` it equals :class:`BalancedSoftmaxLoss` (``log π`` and ``log n`` differ by a constant).
    """

    def __init__(self, class_counts, tau: float = 1.0, reduction: str = "mean"):
        super().__init__(class_counts, reduction)
        counts = _as_counts(class_counts)
        self.tau = float(tau)
        self.register_buffer("log_prior", torch.tensor(np.log(counts / counts.sum()), dtype=torch.float32))

    def per_sample(self, logits, targets):
        self._check_classes(logits)
        return F.cross_entropy(logits + self.tau * self.log_prior.to(logits.dtype), targets, reduction="none")

    def extra_repr(self) -> str:
        return f"tau={self.tau}, reduction={self.reduction!r}"


# ----------------------------------------------------------------------------------------------------------------
# Class weights
# ----------------------------------------------------------------------------------------------------------------
def class_balanced_weights(class_counts, beta: float = 0.9999) -> torch.Tensor:
    """Class-balanced weights of Cui et al. (CVPR 2019): ``w_j ∝ 1/E_{n_j} = (1-β)/(1-β^{n_j})``.

    Normalised so that ``Σ_j w_j = C`` (their convention). ``class_counts``: ``(C,)``, all > 0; ``0 <= β < 1``.
    Returns a float32 tensor ``(C,)``.
    """
    counts = _as_counts(class_counts)
    if not 0.0 <= beta < 1.0:
        raise ValueError(f"beta must be in [0, 1), got {beta}")
    w = 1.0 / effective_number(counts, beta)  # E_n = (1 - β^n) / (1 - β), semscale_lib.scale
    w = w * (counts.size / w.sum())
    return torch.tensor(w, dtype=torch.float32)


def dsb_class_weights(imbalance_scales, normalize: str = "sum1"):
    """Semantic-scale-balanced class weights ``a_i ∝ 1/S_i`` (the paper's Eq. 4, SPEC §5).

    ``imbalance_scales``: ``S`` of shape ``(C,)`` (the semantic scale with inter-class interference, SPEC §4);
    every entry must be finite and > 0, otherwise :class:`ValueError` names the offending class indices.
    Returns the same type as the input (``np.ndarray`` float64, or a tensor with the input's dtype / device).

    ``normalize``:

    - ``"sum1"`` (default): ``Σ a_i = 1`` — **the paper's text**.
    - ``"none"``: ``a_i = 1/S_i`` — **Eq. 4 as printed** (unnormalised).
    - ``"mean1"``: ``Σ a_i = C`` (mean weight 1, keeps the loss on the unweighted scale) — **[ours]**; state it
      when used.
    """
    if normalize not in ("sum1", "mean1", "none"):
        raise ValueError(f"normalize must be 'sum1', 'mean1' or 'none', got {normalize!r}")
    is_tensor = isinstance(imbalance_scales, torch.Tensor)
    s_np = (imbalance_scales.detach().cpu().numpy() if is_tensor else np.asarray(imbalance_scales)).astype(np.float64)
    if s_np.ndim != 1 or s_np.size == 0:
        raise ValueError(f"imbalance_scales must be a non-empty 1-D array, got shape {s_np.shape}")
    bad = np.flatnonzero(~np.isfinite(s_np) | (s_np <= 0))
    if bad.size:
        raise ValueError(f"semantic scales must be finite and > 0; offending class indices: {bad.tolist()}")
    a = 1.0 / s_np
    if normalize == "sum1":
        a = a / a.sum()
    elif normalize == "mean1":
        a = a * (a.size / a.sum())
    if is_tensor:
        dtype = imbalance_scales.dtype if imbalance_scales.is_floating_point() else torch.float32
        return torch.tensor(a, dtype=dtype, device=imbalance_scales.device)
    return a


def drw_weights(epoch: int, class_counts, *, start_epoch: int = 160, beta: float = 0.9999):
    """Deferred re-weighting (LDAM-DRW, Cao et al. 2019): class weights for 0-based ``epoch``.

    ``None`` (unweighted) while ``epoch < start_epoch``, then :func:`class_balanced_weights` ``(C,)``.
    With the default, epochs 0..159 are plain and re-weighting starts at the 161st epoch, as in LDAM-DRW's
    200-epoch CIFAR schedule. Feed the result to :meth:`ClassWeighting.set_weights`.
    """
    if epoch < start_epoch:
        return None
    return class_balanced_weights(class_counts, beta)


# ----------------------------------------------------------------------------------------------------------------
# Weighting wrappers
# ----------------------------------------------------------------------------------------------------------------
class ClassWeighting(nn.Module):
    """Per-class re-weighting of any per-sample loss.

    ``loss = mean_b( w[y_b] · base(z, y)_b )`` with ``reduction="mean"`` (default), or the ``(B,)`` weighted
    per-sample losses with ``reduction="none"``. Note the batch reduction is the plain mean over the ``B``
    samples (SPEC §5, [ours]) — **not** ``torch.nn.functional.cross_entropy(weight=w)``'s
    ``Σ w_y l / Σ w_y``, so the weights' overall scale changes the loss (and the effective learning rate).

    ``base_loss`` must return per-sample losses ``(B,)`` (build it with ``reduction="none"``). ``weights``:
    ``(C,)`` tensor / array, or ``None`` for unweighted; stored as the buffer ``weights`` (moved by ``.to``) and
    changeable at run time with :meth:`set_weights`.
    """

    def __init__(self, base_loss: nn.Module, weights=None, reduction: str = "mean"):
        super().__init__()
        if reduction not in _REDUCTIONS:
            raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")
        if getattr(base_loss, "reduction", "none") != "none":
            raise ValueError("base_loss must return per-sample losses: build it with reduction='none'")
        self.base_loss = base_loss
        self.reduction = reduction
        self.register_buffer("weights", None)
        self.set_weights(weights)

    def set_weights(self, weights) -> None:
        """Replace the class weights (``(C,)``, finite, >= 0) or clear them with ``None``."""
        if weights is None:
            self.weights = None
            return
        w = weights.detach() if isinstance(weights, torch.Tensor) else torch.as_tensor(np.asarray(weights))
        w = w.to(torch.float32)
        if w.ndim != 1 or w.numel() == 0:
            raise ValueError(f"weights must be a non-empty 1-D (C,) tensor, got shape {tuple(w.shape)}")
        bad = torch.nonzero(~torch.isfinite(w) | (w < 0)).flatten()
        if bad.numel():
            raise ValueError(f"weights must be finite and >= 0; offending class indices: {bad.tolist()}")
        old = self.weights
        self.weights = w.to(old.device) if old is not None else w

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        losses = self.base_loss(logits, targets)
        if losses.ndim != 1 or losses.shape[0] != targets.shape[0]:
            raise ValueError(f"base_loss must return per-sample losses (B,), got shape {tuple(losses.shape)}")
        if self.weights is not None:
            if self.weights.numel() != logits.shape[1]:
                raise ValueError(f"{self.weights.numel()} class weights for logits with {logits.shape[1]} classes")
            losses = losses * self.weights.to(device=losses.device, dtype=losses.dtype)[targets]
        return losses.mean() if self.reduction == "mean" else losses

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}, weighted={self.weights is not None}"


class SemanticScaleWeighting(ClassWeighting):
    """The paper's DSB loss (Eq. 4): ``a_y · L(z, y)`` with ``a_i ∝ 1/S_i`` from the current semantic scales.

    Unweighted until the first :meth:`update_from_scales` (stages 1–2 of the dynamic re-weighting, SPEC §5).
    ``normalize`` is the default for :func:`dsb_class_weights` (``"sum1"``, the paper's text).
    """

    def __init__(self, base_loss: nn.Module, normalize: str = "sum1", reduction: str = "mean"):
        super().__init__(base_loss, None, reduction)
        if normalize not in ("sum1", "mean1", "none"):
            raise ValueError(f"normalize must be 'sum1', 'mean1' or 'none', got {normalize!r}")
        self.normalize = normalize

    def update_from_scales(self, imbalance_scales, normalize: str | None = None) -> torch.Tensor:
        """Set the weights from semantic scales ``S`` ``(C,)``; returns the new weights ``(C,)`` (float32)."""
        a = dsb_class_weights(imbalance_scales, normalize or self.normalize)
        self.set_weights(a)
        return self.weights

    def extra_repr(self) -> str:
        return f"normalize={self.normalize!r}, " + super().extra_repr()


# ----------------------------------------------------------------------------------------------------------------
# Registry
# ----------------------------------------------------------------------------------------------------------------
LOSSES: dict[str, type[nn.Module]] = {
    "ce": CrossEntropy,
    "focal": FocalLoss,
    "ldam": LDAMLoss,
    "balanced-softmax": BalancedSoftmaxLoss,
    "logit-adjusted": LogitAdjustedLoss,
}


def build_loss(name: str, class_counts: Sequence[float] | None = None, **kw) -> nn.Module:
    """Build the per-sample (``reduction="none"``) base loss ``name`` from :data:`LOSSES`.

    ``class_counts`` ``(C,)`` are the training counts, required by ``"ldam"``, ``"balanced-softmax"`` and
    ``"logit-adjusted"`` and ignored by ``"ce"`` / ``"focal"``. ``kw`` are the loss's own options (``gamma``;
    ``max_margin``, ``scale``; ``tau``). Unknown ``name`` -> :class:`ValueError` listing the valid names; an
    option the loss does not take -> :class:`TypeError` listing the accepted ones. Wrap the result in
    :class:`ClassWeighting` / :class:`SemanticScaleWeighting` for class weights.
    """
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; valid names: {', '.join(LOSSES)}")
    cls = LOSSES[name]
    params = inspect.signature(cls.__init__).parameters
    accepted = [p for p in params if p not in ("self", "class_counts")]
    unknown = sorted(set(kw) - set(accepted))
    if unknown:
        raise TypeError(f"loss {name!r} got unexpected option(s) {unknown}; accepted: {accepted}")
    kw.setdefault("reduction", "none")
    if "class_counts" in params:
        if class_counts is None:
            raise ValueError(f"loss {name!r} needs class_counts")
        return cls(class_counts, **kw)
    return cls(**kw)
