"""Exact nearest-neighbour search and chunked pairwise distances: the O(N²·d) machinery behind the k-NN and
silhouette measures of :mod:`semscale_lib.difficulty`. Inputs here are already checked: x float64 (N, d), a numpy
array (the CPU path) or a tensor on a CUDA device (:func:`_knn_predict_device`), y int64 (N,) numpy. At most
:func:`chunk_elements` distances are held at once — :data:`CHUNK_ELEMENTS` (64 MiB of float64) on the CPU, a share
of the free memory on a GPU — never the N × N matrix.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from .compute import ieee_float32

CHUNK_ELEMENTS = 1 << 23  # distances held at once by the chunked measures on the CPU (8 Mi float64 = 64 MiB)
GPU_CHUNK_CAP = 1 << 30   # at most 8 GiB of float64 per chunk on a GPU


def chunk_elements(device: torch.device | None = None) -> int:
    """Elements (float64) one chunk may hold on ``device``: :data:`CHUNK_ELEMENTS` on the CPU (None); on CUDA 1/64 of
    the free memory (a chunk's temporaries take a few times its size), between CHUNK_ELEMENTS and GPU_CHUNK_CAP."""
    if device is None or device.type != "cuda":
        return CHUNK_ELEMENTS
    free, _ = torch.cuda.mem_get_info(device)
    return int(min(GPU_CHUNK_CAP, max(CHUNK_ELEMENTS, free // 64)))


def _row_chunks(n_rows: int, n_cols: int, elements: int | None = None):
    step = max(1, (CHUNK_ELEMENTS if elements is None else elements) // max(n_cols, 1))
    for start in range(0, n_rows, step):
        yield start, min(start + step, n_rows)


def _fast_sq_distances(xt: torch.Tensor, sq: torch.Tensor, start: int, stop: int) -> torch.Tensor:
    """‖x_i − x_j‖² for rows start..stop against all rows, by the Gram expansion ‖x_i‖² + ‖x_j‖² − 2 x_i·x_j in
    xt's dtype, clipped at 0; sq = row norms² of xt."""
    block = torch.addmm(sq[None, :], xt[start:stop], xt.T, alpha=-2.0)
    block += sq[start:stop, None]
    return block.clamp_min_(0.0)


def _exact_order(x: np.ndarray, row: int, candidates: np.ndarray) -> np.ndarray:
    """Candidates sorted by exact squared distance to x[row] (direct differences), equal distances by index."""
    exact = ((x[candidates] - x[row]) ** 2).sum(axis=1)
    return candidates[np.lexsort((candidates, exact))]


def _knn_predict(x: np.ndarray, y: np.ndarray, k: int) -> np.ndarray:
    n, d = x.shape
    # screening in float32 on centred vectors (distances do not change; the norms, and so the round-off, shrink)
    centred = x - x.mean(axis=0)
    xt = torch.from_numpy(centred.astype(np.float32))
    sq = (xt * xt).sum(dim=1)
    n_candidates = min(n - 1, 2 * k + 16)
    # |screening − exact| for any pair involving row i stays below this: a generous multiple of the round-off bound
    # γ_d·(‖x_i‖² + ‖x_j‖²) of the Gram expansion plus the float32 rounding of the inputs
    norms = (centred * centred).sum(axis=1)
    slack = 8.0 * (d + 2) * float(np.finfo(np.float32).eps) * (norms + norms.max())
    neighbours = np.empty((n, k), dtype=np.int64)
    for start, stop in _row_chunks(n, max(n, n_candidates * d)):
        fast = _fast_sq_distances(xt, sq, start, stop)
        rows = torch.arange(stop - start)
        fast[rows, rows + start] = math.inf
        fast_vals, cand = torch.topk(fast, n_candidates, dim=1, largest=False, sorted=False)
        del fast
        cand, fast_vals = cand.numpy(), fast_vals.numpy()
        exact = ((x[cand] - x[start:stop, None, :]) ** 2).sum(axis=2)
        order = np.argsort(cand, axis=1, kind="stable")          # by index first ...
        cand, exact = np.take_along_axis(cand, order, 1), np.take_along_axis(exact, order, 1)
        order = np.argsort(exact, axis=1, kind="stable")         # ... then by exact distance (stable keeps index order)
        cand, exact = np.take_along_axis(cand, order, 1), np.take_along_axis(exact, order, 1)
        neighbours[start:stop] = cand[:, :k]
        if n_candidates < n - 1:
            # a non-candidate j has fast_j ≥ max candidate fast value, so exact_j > that − slack: if the k-th exact
            # distance is below it, no non-candidate can be nearer than or tie with the k-th neighbour
            unsafe = exact[:, k - 1] >= fast_vals.max(axis=1) - slack[start:stop]
            for r in np.flatnonzero(unsafe):
                i = start + r
                neighbours[i] = _exact_order(x, i, np.delete(np.arange(n), i))[:k]
    return _vote(y[neighbours])


def _vote(neighbour_labels: np.ndarray) -> np.ndarray:
    """(N, k) labels, nearest first → (N,) majority label; a tie goes to the tied label that occurs first."""
    support = (neighbour_labels[:, :, None] == neighbour_labels[:, None, :]).sum(axis=2)   # votes for each slot's label
    first = np.argmax(support == support.max(axis=1, keepdims=True), axis=1)
    return neighbour_labels[np.arange(len(neighbour_labels)), first]


def _knn_predict_device(x: torch.Tensor, y: np.ndarray, k: int) -> np.ndarray:
    """:func:`_knn_predict` on x's device (CUDA), same algorithm and guarantee: IEEE float32 screening (TF32 off),
    exact float64 re-ranking by direct differences, rows that the bound cannot clear redone against all N points.
    Exactly equal distances rank by index as on the CPU; distances equal up to float64 round-off may rank in the
    other order (the device sums the d squares in its own order). x: float64 (N, d) tensor → (N,) int64 numpy."""
    n, d = x.shape
    centred = x - x.mean(dim=0)
    xt = centred.to(torch.float32)
    sq = (xt * xt).sum(dim=1)
    n_candidates = min(n - 1, 2 * k + 16)
    norms = (centred * centred).sum(dim=1)
    slack = 8.0 * (d + 2) * float(np.finfo(np.float32).eps) * (norms + norms.max())
    elements = chunk_elements(x.device)
    neighbours = torch.empty((n, k), dtype=torch.int64, device=x.device)
    with ieee_float32():
        for start, stop in _row_chunks(n, max(n, n_candidates * d), elements):
            fast = _fast_sq_distances(xt, sq, start, stop)
            rows = torch.arange(stop - start, device=x.device)
            fast[rows, rows + start] = math.inf
            fast_vals, cand = torch.topk(fast, n_candidates, dim=1, largest=False, sorted=False)
            del fast
            cand = torch.sort(cand, dim=1).values                                    # by index first ...
            exact = ((x[cand] - x[start:stop, None, :]) ** 2).sum(dim=2)
            exact, order = torch.sort(exact, dim=1, stable=True)                    # ... then by exact distance
            neighbours[start:stop] = cand.gather(1, order)[:, :k]
            if n_candidates < n - 1:
                unsafe = exact[:, k - 1] >= fast_vals.max(dim=1).values.double() - slack[start:stop]
                redo = torch.nonzero(unsafe).flatten() + start
                if redo.numel():
                    neighbours[redo] = _exact_neighbours(x, redo, k, elements)
    return _vote(y[neighbours.cpu().numpy()])


def _exact_neighbours(x: torch.Tensor, rows: torch.Tensor, k: int, elements: int) -> torch.Tensor:
    """The k nearest other points of x[rows] among all N by exact float64 distance, equal distances by index."""
    n, d = x.shape
    out = torch.empty((len(rows), k), dtype=torch.int64, device=x.device)
    step = max(1, elements // (n * d))
    for at in range(0, len(rows), step):
        part = rows[at:at + step]
        dist = ((x[None, :, :] - x[part, None, :]) ** 2).sum(dim=2)
        dist[torch.arange(len(part), device=x.device), part] = math.inf
        out[at:at + step] = torch.sort(dist, dim=1, stable=True).indices[:, :k]
    return out
