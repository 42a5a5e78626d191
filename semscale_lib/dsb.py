"""Dynamic semantic-scale-balanced re-weighting (Sec. 4.2, Algorithm 2): the storage pool and the S refresh.

The weights a ∝ 1/S are made from S by :mod:`semscale_lib.weights` (rule ``"dsb"``).

The pool holds detached (feature, label) pairs of past mini-batches. Besides the features themselves it keeps,
per class, the running moments count m, Σz and Σzzᵀ (float64), updated whenever a batch enters or leaves, so that
recomputing S′ for all classes costs O(C·d³) whatever the pool size — never a pass over the N stored features.

Two modes:
- ``"fifo"`` (the paper): a FIFO of mini-batches. Epoch 1 only enqueues (stage 1); from epoch 2 each new batch
  pushes out the oldest one, so the pool keeps ≈ N features (N = training-set size).
- ``"per-sample"`` [ours]: a table indexed by training-sample index; each sample keeps its latest feature.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import torch
import torch.distributed as dist

from .checks import require
from .imbalance import imbalance_scale, interclass_term
from .scale import pool_features, semantic_scales_from_moments

POOL_MODES = ("fifo", "per-sample")
#: How class weights are normalised: Σ w = 1, mean w = 1, or as computed (the one list; weights.py uses it too).
NORMALIZATIONS = ("sum1", "mean1", "none")
#: What DSB's weights a ∝ 1/q are made from: S (the paper, Sec. 4.2), S′ or W alone (ours), each a function of the
#: storage pool and the settings giving q (C,), or any per-class measure of
#: :data:`semscale_lib.difficulty.DIFFICULTY_MEASURES` computed on the pooled features (ours, notebook 06) — all
#: oriented so that a larger value is expected to mean an easier class.
GEOMETRY_TARGETS = {
    "S": lambda pool, settings: imbalance_scale(pool.semantic_scales(eps=settings.eps), pool.centres(),
                                                alpha=settings.alpha),
    "S'": lambda pool, settings: pool.semantic_scales(eps=settings.eps),
    "W": lambda pool, settings: interclass_term(pool.centres(), alpha=settings.alpha)[1],
}


def dsb_targets() -> tuple[str, ...]:
    """Every valid ``DSBSettings.target``: :data:`GEOMETRY_TARGETS`, then the difficulty measures' names."""
    from .difficulty import DIFFICULTY_MEASURES
    return tuple(GEOMETRY_TARGETS) + tuple(DIFFICULTY_MEASURES)


class StoragePool:
    """Features and labels of recent mini-batches with per-class running moments.

    features pushed: (B, D) → pooled to ``dim`` (1-D average pooling, docs/paper-notes.md §3) unless ``dim`` is
    None; stored
    float32 on ``device``; moments float64 on ``device``.
    """

    def __init__(self, num_classes: int, *, dim: int | None = 64, mode: str = "fifo", dataset_size: int | None = None,
                 device="cpu"):
        if mode not in POOL_MODES:
            raise ValueError(f"unknown pool mode {mode!r}; valid: {', '.join(POOL_MODES)}")
        if mode == "per-sample" and not dataset_size:
            raise ValueError("the per-sample pool needs dataset_size (number of training samples)")
        self.num_classes, self.dim, self.mode, self.dataset_size = num_classes, dim, mode, dataset_size
        self.device = torch.device(device)
        self.batches: deque[tuple[torch.Tensor, torch.Tensor]] = deque()
        self.table: torch.Tensor | None = None         # per-sample mode: (N, d) features
        self.table_labels: torch.Tensor | None = None  # per-sample mode: (N,) labels, -1 = empty
        self.counts = self.sums = self.outer = None

    # -- moments -----------------------------------------------------------------------------------------------
    def _init_moments(self, d: int) -> None:
        self.counts = torch.zeros(self.num_classes, dtype=torch.float64, device=self.device)
        self.sums = torch.zeros(self.num_classes, d, dtype=torch.float64, device=self.device)
        self.outer = torch.zeros(self.num_classes, d, d, dtype=torch.float64, device=self.device)

    def _accumulate(self, features: torch.Tensor, labels: torch.Tensor, sign: float,
                    present: torch.Tensor | None = None) -> None:
        """Add (sign +1) or remove (-1) features (B, d) of labels (B,) to the moments; where the bool mask
        ``present`` (B,) is False the row counts for nothing (its label must still be a valid class)."""
        z = features.to(torch.float64)
        count = torch.full_like(labels, sign, dtype=torch.float64)
        if present is not None:
            # a masked row adds exactly ±0 everywhere: the same numbers as selecting the present rows, without a
            # data-dependent shape (which would make the host wait for the device)
            count = count * present
            z = z * present[:, None]
        self.counts.index_add_(0, labels, count)
        self.sums.index_add_(0, labels, z, alpha=sign)
        self.outer.index_add_(0, labels, z[:, :, None] * z[:, None, :], alpha=sign)

    def _prepare(self, features: torch.Tensor, labels: torch.Tensor):
        features = features.detach()
        if self.dim is not None:
            features = pool_features(features, self.dim)
        features = features.to(self.device, torch.float32)
        labels = labels.detach().to(self.device, torch.int64)
        require(((labels >= 0) & (labels < self.num_classes)).all(), f"labels must lie in [0, {self.num_classes})",
                lambda: f"; got {int(labels.min())}..{int(labels.max())}")
        if self.counts is None:
            self._init_moments(features.shape[1])
        return features, labels

    # -- updates -----------------------------------------------------------------------------------------------
    def push(self, features: torch.Tensor, labels: torch.Tensor, *, indices: torch.Tensor | None = None,
             dequeue: bool = True) -> None:
        """Add one mini-batch: features (B, D), labels (B,). fifo: then drop the oldest batch when ``dequeue``
        (False in epoch 1 = stage 1). per-sample: ``indices`` (B,) of the samples replace their previous entries."""
        features, labels = self._prepare(features, labels)
        if self.mode == "fifo":
            self.batches.append((features, labels))
            self._accumulate(features, labels, +1.0)
            if dequeue and len(self.batches) > 1:
                old_features, old_labels = self.batches.popleft()
                self._accumulate(old_features, old_labels, -1.0)
            return
        if indices is None:
            raise ValueError("the per-sample pool needs the training indices of the batch")
        indices = indices.to(self.device, torch.int64)
        if self.table is None:
            self.table = torch.zeros(self.dataset_size, features.shape[1], device=self.device)
            self.table_labels = torch.full((self.dataset_size,), -1, dtype=torch.int64, device=self.device)
        old_labels = self.table_labels[indices]
        filled = old_labels >= 0          # samples seen before: their previous features leave the moments
        self._accumulate(self.table[indices], old_labels.clamp_min(0), -1.0, present=filled)
        self.table[indices] = features
        self.table_labels[indices] = labels
        self._accumulate(features, labels, +1.0)

    def rebuild(self) -> None:
        """Recompute the moments from the stored features (removes accumulated round-off; deterministic order)."""
        if self.counts is None:
            return
        self._init_moments(self.sums.shape[1])
        if self.mode == "fifo":
            for features, labels in self.batches:
                self._accumulate(features, labels, +1.0)
        else:
            filled = self.table_labels >= 0
            self._accumulate(self.table[filled], self.table_labels[filled], +1.0)

    def __len__(self) -> int:
        return 0 if self.counts is None else int(self.counts.sum().item())

    # -- what the pool measures --------------------------------------------------------------------------------
    def semantic_scales(self, *, eps: float = 1.0) -> torch.Tensor:
        """S′ per class (C,) float64 from the moments; classes with < 2 stored samples get 0, and so does a class
        whose scatter is too ill-conditioned for the Cholesky factorisation (round-off in the running sums of
        very large features, or non-finite features): its exact fallback would make the host wait for the device
        at every refresh."""
        if self.counts is None:
            raise ValueError("the storage pool is empty")
        return semantic_scales_from_moments(self.counts, self.sums, self.outer, eps=eps, eig_fallback=False)

    def stored(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Every stored feature and its label: (M, d) float32 and (M,) int64, on the pool's device."""
        if self.counts is None:
            raise ValueError("the storage pool is empty")
        if self.mode == "fifo":
            return (torch.cat([f for f, _ in self.batches]), torch.cat([l for _, l in self.batches]))
        filled = self.table_labels >= 0
        return self.table[filled], self.table_labels[filled]

    def centres(self) -> torch.Tensor:
        """Class means of the stored features, (C, d) float64 (zeros for absent classes)."""
        return self.sums / self.counts.clamp_min(1.0)[:, None]

    # -- checkpointing -----------------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"mode": self.mode, "dim": self.dim, "batches": [(f.cpu(), l.cpu()) for f, l in self.batches],
                # copies: the table is updated in place, a state must not change with the pool (nor vice versa)
                "table": None if self.table is None else self.table.cpu().clone(),
                "table_labels": None if self.table_labels is None else self.table_labels.cpu().clone()}

    def load_state_dict(self, state: dict) -> None:
        if state["mode"] != self.mode or state["dim"] != self.dim:
            raise ValueError(f"pool state is mode={state['mode']}, dim={state['dim']}; this pool is "
                             f"mode={self.mode}, dim={self.dim}")
        self.batches = deque((f.to(self.device), l.to(self.device)) for f, l in state["batches"])
        self.table = None if state["table"] is None else state["table"].to(self.device, copy=True)
        self.table_labels = (None if state["table_labels"] is None
                             else state["table_labels"].to(self.device, copy=True))
        d = (self.batches[0][0].shape[1] if self.batches else
             None if self.table is None else self.table.shape[1])
        self.counts = None
        if d is not None:
            self._init_moments(d)
            self.rebuild()


def gather_across_ranks(features: torch.Tensor, labels: torch.Tensor, indices: torch.Tensor | None = None):
    """All-gather a mini-batch from every DistributedDataParallel rank (rank order), so that every rank pushes
    the same features into its pool and computes the same scales. Unequal batch sizes are padded then trimmed.
    Without an initialised process group, returns the inputs unchanged."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return features, labels, indices
    world = dist.get_world_size()
    size = torch.tensor([features.shape[0]], device=features.device)
    sizes = [torch.zeros_like(size) for _ in range(world)]
    dist.all_gather(sizes, size)
    sizes = [int(s.item()) for s in sizes]
    largest = max(sizes)

    def gather(tensor):
        padded = torch.zeros((largest, *tensor.shape[1:]), dtype=tensor.dtype, device=tensor.device)
        padded[:tensor.shape[0]] = tensor
        parts = [torch.zeros_like(padded) for _ in range(world)]
        dist.all_gather(parts, padded)
        return torch.cat([part[:n] for part, n in zip(parts, sizes)])

    return gather(features.detach().contiguous()), gather(labels), None if indices is None else gather(indices)


@dataclass
class DSBSettings:
    """Settings of dynamic re-weighting (docs/paper-notes.md §8) — the only place they are defined.

    ``stage_epochs`` = n: plain loss for epochs ≤ n, re-weighted after (the text; Algorithm 2 starts one epoch
    earlier). ``alpha``: of W = log₂(α + W′), 2 on long-tailed data, 1 on balanced data. ``eps``: ε of Eq. 3.
    ``pool``: "fifo" (the paper) or "per-sample" (ours). ``pool_dim``: stored features average-pooled to
    this many dimensions (None: full). ``refresh_every``: recompute S every k-th iteration of stage 3.
    ``normalize``: of the weights a ∝ 1/S ("sum1", "mean1", "none"). ``log_every``: log every k-th refresh.
    ``target``: the per-class quantity q the weights a ∝ 1/q are made from — "S" (the paper), or one of
    :func:`dsb_targets` (ours: "S'", "W", or a difficulty measure such as "knn_accuracy").
    """
    stage_epochs: int = 5
    alpha: float = 2.0
    eps: float = 1.0
    pool: str = "fifo"
    pool_dim: int | None = 64
    refresh_every: int = 1
    normalize: str = "sum1"
    log_every: int = 20
    target: str = "S"

    def __post_init__(self):
        checks = [(self.stage_epochs >= 1, f"stage_epochs (n) must be ≥ 1, got {self.stage_epochs}"),
                  (self.refresh_every >= 1, f"refresh_every must be ≥ 1, got {self.refresh_every}"),
                  (self.log_every >= 1, f"log_every must be ≥ 1, got {self.log_every}"),
                  (self.alpha >= 1, f"alpha must be ≥ 1, got {self.alpha}"),
                  (self.eps > 0, f"eps must be > 0, got {self.eps}"),
                  (self.pool in POOL_MODES, f"unknown pool {self.pool!r}; valid: {POOL_MODES}"),
                  (self.pool_dim is None or self.pool_dim >= 1, f"pool_dim must be ≥ 1 or None, got {self.pool_dim}"),
                  (self.normalize in NORMALIZATIONS,
                   f"normalize must be one of {NORMALIZATIONS}, got {self.normalize!r}"),
                  (self.target in dsb_targets(),
                   f"unknown DSB target {self.target!r}; valid: {', '.join(dsb_targets())}")]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)


class DynamicReweighting:
    """Drives the pool through the paper's three stages and returns the semantic scales S (C,) when due."""

    def __init__(self, num_classes: int, settings: DSBSettings, *, dataset_size: int, device="cpu"):
        self.settings = settings
        self.pool = StoragePool(num_classes, dim=settings.pool_dim, mode=settings.pool,
                                dataset_size=dataset_size, device=device)
        self.iteration = 0

    def reweighting(self, epoch: int) -> bool:
        """Stage 3 (weights used) for epochs > n; ``epoch`` counts from 1."""
        return epoch > self.settings.stage_epochs

    def step(self, epoch: int, features: torch.Tensor, labels: torch.Tensor, indices: torch.Tensor | None = None):
        """Update the pool with this iteration's batch (gathered across ranks); in stage 3 and on a refresh
        iteration return the scales S (C,) as a float64 tensor, else None."""
        features, labels, indices = gather_across_ranks(features, labels, indices)
        self.pool.push(features, labels, indices=indices, dequeue=epoch > 1)
        self.iteration += 1
        if not self.reweighting(epoch) or (self.iteration - 1) % self.settings.refresh_every:
            return None
        return self.current_scales()

    def current_scales(self) -> torch.Tensor:
        """The target quantity q (C,) float64 from the pool now; for the paper's target "S",
        S = S′_norm ⊙ log₂(α + W′) (Sec. 3.4.1)."""
        target, pool = self.settings.target, self.pool
        if target in GEOMETRY_TARGETS:
            scales = GEOMETRY_TARGETS[target](pool, self.settings)
        else:
            from .difficulty import DIFFICULTY_MEASURES
            features, labels = pool.stored()
            values = DIFFICULTY_MEASURES[target](features, labels, pool.num_classes, device=pool.counts.device)
            scales = torch.as_tensor(values, dtype=torch.float64).to(pool.counts.device)
        usable = (scales > 0) & torch.isfinite(scales) & (pool.counts >= 2)
        require(usable.any(), f"no class has ≥ 2 samples and a positive {target} in the storage pool")
        # [ours] a class with < 2 stored samples (or q ≤ 0 / undefined) gets the smallest usable q (largest weight)
        smallest = scales.masked_fill(~usable, torch.inf).min()
        return torch.where(usable, scales, smallest)

    def state_dict(self) -> dict:
        return {"iteration": self.iteration, "pool": self.pool.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.iteration = state["iteration"]
        self.pool.load_state_dict(state["pool"])


__all__ = ["StoragePool", "DynamicReweighting", "DSBSettings", "GEOMETRY_TARGETS", "dsb_targets",
           "gather_across_ranks", "POOL_MODES"]
