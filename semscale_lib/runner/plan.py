"""The training runs a batch run needs, listed before anything trains: the union over its notebooks and grid points of
what each notebook's planner (:mod:`semscale_lib.studies.plans`) names, each run once, with the folder it lives in
under the batch run's shared ``training-runs`` folder, its state there and its size."""
from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from ..data import load_dataset, long_tailed_counts, named_counts
from ..data.settings import split_dataset_name
from ..training.reuse import comparable_settings, run_folder_name, settings_key
from .jobs import plan_jobs
from .profiles import RUNS_FOLDER, notebook_defaults

STATES = ("finished", "interrupted", "new")


@dataclass
class PlannedRun:
    config: object                  # TrainConfig
    folder: Path                    # <run folder>/training-runs/<run_folder_name(config)>
    notebooks: list[str]            # labels of the jobs that ask for it
    images: int | None              # training images the run processes (epochs × training-set size), None: unknown
    state: str                      # "finished", "interrupted" (a folder without its final tables) or "new"

    @property
    def key(self) -> str:
        return settings_key(self.config)


@dataclass
class RunPlan:
    runs_dir: Path
    runs: list[PlannedRun] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)    # "<notebook>: <runs named once others finish>"
    waiting_images: int = 0                             # their training images (estimated from runs of their size)
    deferred: list[str] = field(default_factory=list)   # "<notebook>: <runs the notebook decides and trains>"

    def count(self, state: str) -> int:
        return sum(run.state == state for run in self.runs)

    def summary(self) -> str:
        """One line: how many runs, in which state, how many images in all, what is left to later."""
        images = [r.images for r in self.runs if r.state != "finished"]
        known = sum(i for i in images if i is not None) + self.waiting_images
        line = (f"{len(self.runs)} runs ({self.count('finished')} finished, {self.count('interrupted')} interrupted, "
                f"{self.count('new')} new); to train: {format_images(known)} training images"
                + (f" (+{sum(i is None for i in images)} of unknown size)" if None in images else ""))
        if self.waiting:
            line += f" (of which {format_images(self.waiting_images)} in {len(self.waiting)} group(s) named once others " \
                    "finish)"
        if self.deferred:
            line += f"; {len(self.deferred)} group(s) left to the notebooks"
        return line


def _state(folder: Path) -> str:
    from ..studies.plans import FINISHED_FILE
    if (folder / FINISHED_FILE).is_file():
        return "finished"
    return "interrupted" if folder.is_dir() and any(folder.iterdir()) else "new"


def _check_folder(folder: Path, config) -> None:
    """A folder of this name that holds a run of other settings is refused before anything starts."""
    saved = folder / "config.json"
    if not saved.is_file():
        return
    try:
        recorded = json.loads(saved.read_text()).get("config")
    except (OSError, ValueError):
        recorded = None
    if not isinstance(recorded, dict) or comparable_settings(recorded) != comparable_settings(config.to_dict()):
        raise ValueError(f"the runs folder holds a run of other settings under the name {folder.name} ({folder}); "
                         "move it away or plan into another --out")


@functools.lru_cache(maxsize=None)
def _class_counts(dataset: str, data_root: str | None) -> tuple[int, ...]:
    labels = load_dataset(dataset, train=True, root=data_root).labels
    return tuple(int(c) for c in np.bincount(labels))


def training_images(config) -> int | None:
    """Training images ``config`` processes: epochs × training-set size (long-tailed counts, per-class subset and
    validation carve-out applied), capped by ``max_steps`` × batch; None for data the plan does not read (image lists
    and folders)."""
    settings = config.data
    base, long_tailed = split_dataset_name(settings.dataset)
    try:
        counts = np.array(_class_counts(base, settings.data_root))
    except (OSError, ValueError, TypeError):
        return None
    if long_tailed:
        counts = np.array(named_counts(settings.profile) if settings.profile not in ("exp", "step") else
                          long_tailed_counts(int(counts.max()), len(counts), settings.imbalance_factor,
                                             settings.profile))
    if settings.subset_per_class is not None:
        counts = np.minimum(counts, int(settings.subset_per_class))
    counts = counts - np.floor(settings.val_fraction * counts)
    size = int(counts.sum())
    images = config.optim.epochs * size
    if config.optim.max_steps is not None:
        images = min(images, config.optim.max_steps * config.optim.batch_size)
    return images


def plan_runs(profile: Mapping, run_dir, *, grid: Mapping | None = None, only: Sequence[str] | None = None,
              notebooks_dir=None, memo: dict | None = None) -> RunPlan:
    """Every training run the profile's notebooks ask for (after ``grid`` and ``only``), each once, in the order
    first asked; its folder under ``<run_dir>/training-runs``. Raises ValueError (one line) for what
    :func:`~.jobs.plan_jobs` refuses and for a folder there that holds a run of other settings under the same name.
    ``memo`` (a dict kept between calls): planning again reuses the parts of planners that read no finished run
    (notebook 01's pixel volumes are computed once per ``train-runs``, not once per wave)."""
    from ..studies.plans import PLANNERS, PLANNERS_READING_RUNS
    runs_dir = Path(run_dir).resolve() / RUNS_FOLDER
    plan = RunPlan(runs_dir)
    by_folder: dict[str, PlannedRun] = {}
    for job in plan_jobs(profile, run_dir, notebooks_dir=notebooks_dir, grid=grid, only=only, report=False):
        planner = PLANNERS.get(job.notebook.stem)
        if planner is None:
            continue
        parameters = {**notebook_defaults(job.notebook, strict=True), **job.parameters}
        key = (job.notebook.stem, json.dumps(parameters, sort_keys=True, default=str))
        if memo is not None and key in memo:
            part = memo[key]
        else:
            part = planner(parameters, runs_dir)
            if memo is not None and job.notebook.stem not in PLANNERS_READING_RUNS:
                memo[key] = part
        for config in part.runs:
            name = run_folder_name(config)
            if name in by_folder:
                if job.label not in by_folder[name].notebooks:
                    by_folder[name].notebooks.append(job.label)
                continue
            folder = runs_dir / name
            _check_folder(folder, config)
            by_folder[name] = PlannedRun(config, folder, [job.label], training_images(config), _state(folder))
        plan.waiting += [f"{job.label}: {group.what}" for group in part.waiting]
        plan.waiting_images += sum(group.count * (training_images(group.like) or 0) for group in part.waiting)
        plan.deferred += [f"{job.label}: {line}" for line in part.deferred]
    plan.runs = list(by_folder.values())
    return plan


def plan_table(plan: RunPlan) -> list[dict]:
    """One row per planned run, for printing and for ``plan.json``: folder, state, notebooks, dataset, model,
    loss, reweight, seed, epochs, images (training images processed) and the settings key."""
    rows = []
    for run in plan.runs:
        config = run.config
        rows.append({"folder": run.folder.name, "state": run.state, "notebooks": run.notebooks,
                     "dataset": config.data.dataset, "model": config.model, "loss": config.loss.name,
                     "reweight": config.weighting.rule, "seed": config.optim.seed, "epochs": config.optim.epochs,
                     "images": run.images, "key": run.key})
    return rows


def format_images(images: int | None) -> str:
    if images is None:
        return "?"
    return f"{images / 1e6:.2f} M" if images >= 1e5 else f"{images:,}"


def print_plan(plan: RunPlan, stream) -> None:
    """The plan as a table (one line per run), then what waits and what the notebooks decide, then its summary."""
    width = max([len(r.folder.name) for r in plan.runs] + [6])
    print(f"{'state':<12} {'run folder':<{width}} {'epochs':>6} {'images':>9}  notebooks", file=stream)
    for run in plan.runs:
        print(f"{run.state:<12} {run.folder.name:<{width}} {run.config.optim.epochs:>6} "
              f"{format_images(run.images):>9}  {', '.join(run.notebooks)}", file=stream)
    for line in plan.waiting:
        print(f"waiting: {line}", file=stream)
    for line in plan.deferred:
        print(f"left to the notebook: {line}", file=stream)
    print(f"runs folder: {plan.runs_dir}", file=stream)
    print(plan.summary(), file=stream, flush=True)


__all__ = ["PlannedRun", "RunPlan", "STATES", "format_images", "plan_runs", "plan_table", "print_plan",
           "training_images"]
