"""Every environment variable semscale reads, read in one place (:func:`environment`).

=============================  ==========================================================================
``SEMSCALE_DATA``              raw datasets (default ``<repo>/data/raw``, git-ignored)
``SEMSCALE_SPLITS``            saved long-tailed index lists (default ``<repo>/data/splits``, committed)
``SEMSCALE_RUNS``              training runs and batch runs (default ``<repo>/runs``, git-ignored)
``SEMSCALE_VERIFY_CHECKSUMS``  ``0``: the CIFAR loaders accept files that are not the official ones
``SEMSCALE_DEBUG``             not empty or ``0``: the command line shows full tracebacks instead of one line
``WORLD_SIZE``, ``LOCAL_RANK``  set by ``torchrun``: processes in the run, and this process's GPU on its node
=============================  ==========================================================================

The variables are read at each call, not once at import, so that a test or a notebook that sets one sees it.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Environment:
    """What the environment variables say (see the module's table); defaults where a variable is unset."""
    data: Path
    splits: Path
    runs: Path
    verify_checksums: bool
    debug: bool
    world_size: int
    local_rank: int


def _flag(value: str | None, default: bool) -> bool:
    return default if value is None or not value.strip() else value.strip() != "0"


def environment() -> Environment:
    """The environment variables now, as an :class:`Environment`."""
    env = os.environ
    return Environment(data=Path(env.get("SEMSCALE_DATA", REPO_ROOT / "data" / "raw")),
                       splits=Path(env.get("SEMSCALE_SPLITS", REPO_ROOT / "data" / "splits")),
                       runs=Path(env.get("SEMSCALE_RUNS", REPO_ROOT / "runs")),
                       verify_checksums=_flag(env.get("SEMSCALE_VERIFY_CHECKSUMS"), True),
                       debug=_flag(env.get("SEMSCALE_DEBUG"), False),
                       world_size=int(env.get("WORLD_SIZE", "1")), local_rank=int(env.get("LOCAL_RANK", "0")))


__all__ = ["Environment", "REPO_ROOT", "environment"]
