"""Where a training run's long-tailed split list lives: a list the project's splits folder already holds (the
committed ``data/splits/*.txt``) is read from there; a split drawn for the run is written into the run's own folder,
never into the project's."""
from __future__ import annotations

import contextlib
from pathlib import Path

from .. import paths
from ..data.longtail import _split_file_name   # the one naming rule of split files
from ..data.settings import split_dataset_name
from .config import TrainConfig

PARAMETRIC_PROFILES = ("exp", "step")


def project_split_file(config: TrainConfig) -> Path | None:
    """The project's split list for ``config``'s long-tailed training set when that folder holds it, else None
    (not long-tailed, or a split no list there holds: drawn for the run)."""
    base, long_tailed = split_dataset_name(config.data.dataset)
    if not long_tailed:
        return None
    parametric = config.data.profile in PARAMETRIC_PROFILES
    name = _split_file_name(base, config.data.profile, config.data.imbalance_factor if parametric else None, [],
                            config.data.split_seed, custom=False)
    path = paths.project_splits_root() / name
    return path if path.is_file() else None


@contextlib.contextmanager
def run_splits(config: TrainConfig, run_folder):
    """Within the block, the split of ``config`` is read from the project's splits folder when it holds it, else
    read from (or drawn and written into) ``run_folder``."""
    if project_split_file(config) is not None:
        yield paths.project_splits_root()
        return
    with paths.splits_folder(run_folder) as folder:
        yield folder
