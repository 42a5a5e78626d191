"""Classification losses for long-tailed learning, and the wrapper that applies class weights to any of them.

Conventions
-----------
- Every loss is an ``nn.Module`` called as ``loss(logits, targets)`` with ``logits`` ``(B, C)`` float and
  ``targets`` ``(B,)`` int64 class indices. With ``reduction="none"`` it returns the per-sample losses ``(B,)``
  (nats); with ``reduction="mean"`` (default) their mean, a scalar.
- Base losses carry no class weights (unless the published loss is defined with them). Class-level weighting is
  the wrapper :class:`ClassWeighting`: ``loss_b = w[y_b] * base(z_b, y_b)`` reduced over the batch. Losses take
  weights, they do not compute them: every weighting rule (CB, DRW, static, the paper's DSB a ∝ 1/S of Eq. 4)
  lives in :mod:`semscale_lib.weights`.
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

from .checks import require


__all__ = [
    "CrossEntropy",
    "FocalLoss",
    "LDAMLoss",
    "BalancedSoftmaxLoss",
    "LogitAdjustedLoss",
    "ClassWeighting",
    "WEIGHT_REDUCTIONS",
    "as_counts",
    "LOSSES",
    "build_loss",
]

_REDUCTIONS = ("mean", "none")
#: Batch reductions of :class:`ClassWeighting`: plain mean of w_y·ℓ, Σ w_y ℓ / Σ w_y, or per-sample.
WEIGHT_REDUCTIONS = ("mean", "weighted-mean", "none")


def as_counts(class_counts, name: str = "class_counts") -> np.ndarray:
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

    #: The loss's own options, declared here: keyword of ``__init__`` → the TrainConfig setting that holds it.
    config_options: dict[str, str] = {}

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
        counts = as_counts(class_counts)
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

    config_options = {"gamma": "focal_gamma"}

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

    config_options = {"max_margin": "ldam_max_margin", "scale": "ldam_scale"}

    def __init__(self, class_counts, max_margin: float = 0.5, scale: float = 30.0, reduction: str = "mean"):
        super().__init__(class_counts, reduction)
        counts = as_counts(class_counts)
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

    config_options = {"tau": "la_tau"}

    def __init__(self, class_counts, tau: float = 1.0, reduction: str = "mean"):
        super().__init__(class_counts, reduction)
        counts = as_counts(class_counts)
        self.tau = float(tau)
        self.register_buffer("log_prior", torch.tensor(np.log(counts / counts.sum()), dtype=torch.float32))

    def per_sample(self, logits, targets):
        self._check_classes(logits)
        return F.cross_entropy(logits + self.tau * self.log_prior.to(logits.dtype), targets, reduction="none")

    def extra_repr(self) -> str:
        return f"tau={self.tau}, reduction={self.reduction!r}"


# ----------------------------------------------------------------------------------------------------------------
# Weighting wrappers
# ----------------------------------------------------------------------------------------------------------------
class ClassWeighting(nn.Module):
    """Per-class re-weighting of any per-sample loss; the weights come from a rule in :mod:`semscale_lib.weights`.

    ``reduction`` (docs/paper-notes.md §7):

    - ``"mean"``: ``mean_b( w[y_b] · ℓ_b )`` — the weights' overall scale changes the loss (and so the effective
      learning rate);
    - ``"weighted-mean"``: ``Σ_b w[y_b] ℓ_b / Σ_b w[y_b]`` — exactly ``F.cross_entropy(weight=w)`` for CE, the
      reduction of the LDAM-DRW reference code; invariant to the weights' scale;
    - ``"none"``: the ``(B,)`` weighted per-sample losses.

    Unweighted (``weights`` None) every reduction is the plain mean. ``base_loss`` must return per-sample losses
    ``(B,)`` (build it with ``reduction="none"``). ``weights``: ``(C,)`` tensor / array or ``None``; stored as the
    buffer ``weights`` (moved by ``.to``) and changed at run time with :meth:`set_weights`.
    """

    def __init__(self, base_loss: nn.Module, weights=None, reduction: str = "mean"):
        super().__init__()
        if reduction not in WEIGHT_REDUCTIONS:
            raise ValueError(f"reduction must be one of {WEIGHT_REDUCTIONS}, got {reduction!r}")
        if getattr(base_loss, "reduction", "none") != "none":
            raise ValueError("base_loss must return per-sample losses: build it with reduction='none'")
        self.base_loss = base_loss
        self.reduction = reduction
        self.register_buffer("weights", None)
        self.set_weights(weights)

    def set_weights(self, weights) -> None:
        """Replace the class weights (``(C,)``, finite, >= 0) or clear them with ``None``. Checked without reading
        the weights back (:func:`~semscale_lib.checks.require`): DSB sets new ones every training iteration."""
        if weights is None:
            self.weights = None
            return
        w = weights.detach() if isinstance(weights, torch.Tensor) else torch.as_tensor(np.asarray(weights))
        w = w.to(torch.float32)
        if w.ndim != 1 or w.numel() == 0:
            raise ValueError(f"weights must be a non-empty 1-D (C,) tensor, got shape {tuple(w.shape)}")
        bad = ~torch.isfinite(w) | (w < 0)
        require(~bad.any(), "weights must be finite and >= 0",
                lambda: f"; offending class indices: {torch.nonzero(bad).flatten().tolist()}")
        old = self.weights
        self.weights = w.to(old.device) if old is not None else w

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        losses = self.base_loss(logits, targets)
        if losses.ndim != 1 or losses.shape[0] != targets.shape[0]:
            raise ValueError(f"base_loss must return per-sample losses (B,), got shape {tuple(losses.shape)}")
        if self.weights is not None:
            if self.weights.numel() != logits.shape[1]:
                raise ValueError(f"{self.weights.numel()} class weights for logits with {logits.shape[1]} classes")
            sample_weights = self.weights.to(device=losses.device, dtype=losses.dtype)[targets]
            losses = losses * sample_weights
            if self.reduction == "weighted-mean":
                return losses.sum() / sample_weights.sum()
        return losses if self.reduction == "none" else losses.mean()

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}, weighted={self.weights is not None}"


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
    :class:`ClassWeighting` for class weights.
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


def configured_loss(settings, class_counts: Sequence[float], *, reduction: str = "mean") -> ClassWeighting:
    """The base loss ``settings.name`` (per-sample) with the options its registry entry declares in
    ``config_options`` (keyword → attribute of ``settings``, a run's loss settings), read from ``settings``, inside a
    :class:`ClassWeighting` with ``reduction``; unweighted until weights are set."""
    declared = LOSSES[settings.name].config_options if settings.name in LOSSES else {}
    options = {keyword: getattr(settings, attribute) for keyword, attribute in declared.items()}
    return ClassWeighting(build_loss(settings.name, class_counts, **options), reduction=reduction)
