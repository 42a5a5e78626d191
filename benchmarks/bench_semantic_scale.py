"""Per-class semantic scales of a CIFAR-100-sized feature set: batched vs the plain-det reference loop.

Prints ratios measured side by side in one run (the machine is noisy: compare ratios, not wall times):
- speed-up of ``class_semantic_scales`` over a per-class loop of the authors' plain-``det`` formula (float64);
- agreement of the two where the reference is finite, and whether the reference overflows (inf) at d = 512;
- our time over the GEMM bound: flops of the per-class Gram matrices at this machine's measured float64 GEMM rate.

Run: ``make bench`` or ``.venv/bin/python benchmarks/bench_semantic_scale.py [--repeats 5]``.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from semscale_lib import class_semantic_scales, semantic_scale_plain_det


def best_time(fn, repeats: int) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def gemm_rate(n: int = 1024, repeats: int = 5) -> float:
    """Measured float64 GEMM rate of torch on this machine, flop/s."""
    a = torch.randn(n, n, dtype=torch.float64)
    b = torch.randn(n, n, dtype=torch.float64)
    seconds, _ = best_time(lambda: a @ b, repeats)
    return 2 * n**3 / seconds


def gram_flops(m: int, d: int, classes: int) -> float:
    """Flops of the per-class Gram products we form: the smaller of XᵀX (d×d) and XXᵀ (m×m)."""
    return classes * 2.0 * m * d * min(m, d)


def run(dims: int, classes: int, per_class: int, repeats: int, rate: float) -> dict:
    rng = np.random.default_rng(0)
    features = rng.normal(size=(classes * per_class, dims)) * rng.uniform(0.5, 2.0, size=dims)
    labels = np.repeat(np.arange(classes), per_class)
    rng.shuffle(labels)
    ours_s, ours = best_time(lambda: class_semantic_scales(features, labels), repeats)
    ref_s, ref = best_time(lambda: np.array([semantic_scale_plain_det(features[labels == c])
                                             for c in range(classes)]), max(1, repeats // 2))
    finite = np.isfinite(ref)
    max_rel = float(np.max(np.abs(ours[finite] - ref[finite]) / np.abs(ref[finite]))) if finite.any() else np.nan
    bound = gram_flops(per_class, dims, classes) / rate
    return dict(dims=dims, ours_s=ours_s, ref_s=ref_s, speedup=ref_s / ours_s, ref_inf=int((~finite).sum()),
                max_rel_diff=max_rel, over_gemm_bound=ours_s / bound, ours_finite=bool(np.all(np.isfinite(ours))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--per-class", type=int, default=500)
    parser.add_argument("--dims", type=int, nargs="+", default=[64, 512])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    rate = gemm_rate()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, float64 GEMM rate {rate / 1e9:.2f} GFLOP/s")
    print(f"{args.classes} classes x {args.per_class} samples")
    header = f"{'d':>5} {'ours s':>9} {'plain-det s':>12} {'speed-up':>9} {'ref inf':>8} {'max rel diff':>13} " \
             f"{'x GEMM bound':>13}"
    print(header)
    for dims in args.dims:
        r = run(dims, args.classes, args.per_class, args.repeats, rate)
        print(f"{r['dims']:>5} {r['ours_s']:>9.4f} {r['ref_s']:>12.4f} {r['speedup']:>8.1f}x {r['ref_inf']:>8d} "
              f"{r['max_rel_diff']:>13.2e} {r['over_gemm_bound']:>12.2f}x"
              + ("" if r["ours_finite"] else "  (ours not finite!)"))


if __name__ == "__main__":
    main()
