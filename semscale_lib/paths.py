"""Where semscale keeps data, splits and run outputs.

Every location can be moved with an environment variable so that an installed copy of the library, a notebook
run from another folder and CI all agree:

- ``SEMSCALE_DATA``  — downloaded / copied raw data (default ``<repo>/data/raw``, git-ignored)
- ``SEMSCALE_SPLITS`` — saved long-tailed index lists (default ``<repo>/data/splits``, committed)
- ``SEMSCALE_RUNS`` — outputs of training runs and batch runs (default ``<repo>/runs``, git-ignored)
"""
from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def data_root() -> Path:
    """Folder for raw datasets (created on demand by the fetchers, not here)."""
    return Path(os.environ.get("SEMSCALE_DATA", REPO_ROOT / "data" / "raw"))


def splits_root() -> Path:
    """Folder for saved long-tailed split index files."""
    return Path(os.environ.get("SEMSCALE_SPLITS", REPO_ROOT / "data" / "splits"))


def runs_root() -> Path:
    """Folder under which training runs and batch runs write their outputs."""
    return Path(os.environ.get("SEMSCALE_RUNS", REPO_ROOT / "runs"))
