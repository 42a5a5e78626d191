"""semscale — measure, see and fix semantic scale imbalance (Ma et al., ICLR 2023, arXiv 2212.14613).

The measuring core is imported here. The rest lives in its own modules: ``data`` (datasets, long-tailed splits,
batches), ``models``, ``losses``, ``weights`` (every class-weight rule), ``dsb`` (the storage pool of dynamic
re-weighting), ``training`` (the one training loop), ``verdicts`` (how claims are judged), ``studies`` (one module
per notebook's claim), ``runner`` (batch runs of the notebooks) and ``plotting``. Our choices where the paper is
silent: docs/paper-notes.md.
"""
from .imbalance import correlate, imbalance_summary, quantify_imbalance
from .scale import (
    class_semantic_scales,
    effective_number,
    multiscale_semantic_scale,
    pool_features,
    sample_volume,
    semantic_scale,
    semantic_scale_plain_det,
)
from .features import extract_features

__version__ = "0.1.0"

__all__ = [
    "class_semantic_scales", "correlate", "effective_number", "extract_features", "imbalance_summary",
    "multiscale_semantic_scale", "pool_features", "quantify_imbalance", "sample_volume", "semantic_scale",
    "semantic_scale_plain_det",
]
