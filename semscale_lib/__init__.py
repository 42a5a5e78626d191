"""semscale — measure, see and fix semantic scale imbalance (Ma et al., ICLR 2023, arXiv 2212.14613)."""
from .scale import (
    class_semantic_scales,
    effective_number,
    multiscale_semantic_scale,
    pool_features,
    sample_volume,
    semantic_scale,
    semantic_scale_plain_det,
)

__version__ = "0.1.0"
