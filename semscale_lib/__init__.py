"""semscale — measure, see and fix semantic scale imbalance (Ma et al., ICLR 2023, arXiv 2212.14613).

The measuring core is imported here; training (``semscale_lib.train``), data (``semscale_lib.data``), models,
losses, the DSB pool (``semscale_lib.dsb``) and plotting live in their own modules.
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
