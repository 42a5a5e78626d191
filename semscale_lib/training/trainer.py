"""The one training loop: every loss × every weighting rule, on a whole, long-tailed or subsampled training set.

``train(config)`` (or ``python -m semscale_lib train ...``) writes into its own folder (:mod:`.runs`);
``resume=<folder>`` continues an interrupted run (:mod:`.resume` says which folders may be), and on the CPU ends
with exactly the metrics of an uninterrupted one. Each batch is one :func:`~.step.train_step` with the run's
:class:`~.step.Criterion`, which owns the weighting rule (:mod:`semscale_lib.weights`) and the weighted loss:
trainer → criterion → (rule → loss), in that direction. Runs shared by their settings: :mod:`.reuse`; what trained
a run: :mod:`.provenance`; devices: :mod:`.device`.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from tqdm.auto import tqdm

from ..data import save_split
from ..data.run_data import RunData, load_run_data
from ..models import build_model
from ..settings import environment
from . import provenance
from .config import TrainConfig, make_config
from .device import (check_device, deterministic_algorithms, distributed as _distributed, environment_info,
                     resolve_device)
from .resume import (RunDiverged, corrupt_checkpoint as _corrupt_checkpoint, record_divergence, restore,
                     resolve_run as _resolve_run)
from .reuse import run_folder_name, settings_key, train_or_reuse
from .runs import CHECKPOINT, SUBSET_FILE, atomic_save, write_per_class, write_tables
from .evaluation import evaluate, top1
from .schedules import make_optimizer_and_schedule
from .splits import run_splits
from .step import Criterion, train_step

__all__ = ["check_device", "deterministic_algorithms", "environment_info", "evaluate", "make_config",
           "make_optimizer_and_schedule", "resolve_device", "run_folder_name", "settings_key", "top1", "train",
           "train_or_reuse"]


def _evaluate_now(config: TrainConfig, epoch: int) -> bool:
    return epoch == config.optim.epochs or (config.evaluation.every > 0 and epoch % config.evaluation.every == 0)


@dataclass
class _Run:
    """Everything one training run holds while it trains (built by :func:`_start`)."""
    config: TrainConfig
    out: Path
    data: RunData
    device: torch.device
    amp: bool
    rank: int
    world: int
    model: torch.nn.Module
    net: torch.nn.Module                      # the model, wrapped for DDP when world > 1
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    criterion: Criterion                      # the weighting rule and the weighted loss
    generator: torch.Generator
    history: list = field(default_factory=list)
    start_epoch: int = 1



def _start(config: TrainConfig, out: Path, resuming: bool) -> _Run:
    """Device, data, model, optimizer, loss and weighting rule of a run; restored from the checkpoint when
    ``resuming``, else the folder's config.json (and subset split) written. A long-tailed split drawn for the run
    is saved in its folder (a split list already in the project's splits folder is read from there)."""
    rank, world = _distributed()
    if world > 1:
        dist.barrier()  # every rank has checked the output folder before rank 0 writes into it
    device = resolve_device(config.device)
    if device.type == "cuda" and world > 1:
        device = torch.device("cuda", environment().local_rank)
    if device.type == "cpu":
        deterministic_algorithms()
    amp = device.type == "cuda"
    with run_splits(config, out):
        data = load_run_data(config.data, device)
    torch.manual_seed(config.optim.seed)
    model = build_model(config.model, len(data.counts), in_channels=data.in_channels, input_size=data.input_size,
                        normalized_classifier=config.loss.name == "ldam").to(device)
    model = model.to(memory_format=torch.channels_last)   # faster convolutions on CPU and GPU alike
    net = model if world == 1 else torch.nn.parallel.DistributedDataParallel(
        model, device_ids=[device.index] if amp else None)
    optimizer, scheduler = make_optimizer_and_schedule(model, config)
    run = _Run(config, out, data, device, amp, rank, world, model, net, optimizer, scheduler,
               Criterion.from_config(config, data.counts, dataset_size=len(data.train), device=device),
               torch.Generator().manual_seed(config.optim.seed))
    if resuming:
        try:
            state = torch.load(out / CHECKPOINT, map_location=device, weights_only=False)
        except Exception as error:  # truncated / corrupt file: one clear message, never a pickle traceback
            raise ValueError(_corrupt_checkpoint(out / CHECKPOINT, f"{type(error).__name__}: "
                                                 f"{str(error).splitlines()[0] if str(error) else ''}")) from error
        restore(run, state, out)
    elif rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.json").write_text(json.dumps(
            {"config": config.to_dict(), "code": provenance.code_record(), "environment": environment_info(device),
             "split_file": data.split_file, "train_counts": data.counts.tolist(),
             "val_counts": None if data.val is None else np.bincount(data.val.labels.cpu().numpy(),
                                                                     minlength=len(data.counts)).tolist(),
             "world_size": world,
             "reduction": config.reduction},
            indent=2))
        if data.subset_indices is not None:
            save_split(out / SUBSET_FILE, data.subset_indices,
                       meta={"dataset": config.data.dataset, "subset_per_class": config.data.subset_per_class,
                             "seed": config.data.split_seed, "counts": data.counts.tolist()})
    return run


def _train_epoch(run: _Run, epoch: int, progress: bool) -> dict:
    """One epoch (or what is left of the step budget): returns {loss (mean per sample), lr (at its start),
    images}. Raises RunDiverged (a FloatingPointError) at the first non-finite loss."""
    config, data = run.config, run.data
    run.criterion.start_epoch(epoch)
    order = torch.randperm(len(data.train), generator=run.generator)
    order = order[:len(order) - len(order) % run.world][run.rank::run.world]  # DDP needs equal step counts
    run.model.train()
    total, seen, lr = 0.0, 0, run.optimizer.param_groups[0]["lr"]
    per_epoch = math.ceil(len(order) / config.optim.batch_size)
    budget = config.optim.max_steps
    steps = per_epoch if budget is None else min(per_epoch, budget - (epoch - 1) * per_epoch)
    batches = data.train.epoch(order, config.optim.batch_size, generator=run.generator, augment=config.data.augment)
    for iteration, (indices, inputs, targets) in enumerate(tqdm(
            batches, total=steps, desc=f"epoch {epoch}/{config.optim.epochs}", disable=not progress or run.rank != 0,
            leave=False), start=1):
        if iteration > steps:
            break
        loss = train_step(run.net, run.criterion, run.optimizer, inputs, targets, epoch=epoch, indices=indices,
                          amp=run.amp)
        if not torch.isfinite(loss):
            raise RunDiverged(float(loss), epoch, iteration, lr, run.out)
        if config.optim.max_steps is not None:
            run.scheduler.step()
        total += float(loss) * len(targets)
        seen += len(targets)
    if config.optim.max_steps is None:
        run.scheduler.step()
    run.criterion.end_epoch()
    return {"loss": total / max(seen, 1), "lr": lr, "images": seen}


#: A checkpoint (and metrics.csv) is written after the first epoch that ends this many seconds after the last one,
#: and after the last epoch: a kill loses at most this much training, and runs of many tiny epochs do not spend
#: most of their time writing checkpoints.
CHECKPOINT_SECONDS = 20.0


def _save_epoch(run: _Run, epoch: int) -> None:
    """metrics.csv, weights.csv and the checkpoint after ``epoch`` (rank 0; the checkpoint written atomically)."""
    if run.rank != 0:
        return
    write_tables(run.out, run.history, run.criterion.log_rows())
    atomic_save({"epoch": epoch, "model": run.model.state_dict(), "optimizer": run.optimizer.state_dict(),
                 "scheduler": run.scheduler.state_dict(), "weighting": run.criterion.state_dict(),
                 "generator": run.generator.get_state(), "history": run.history}, run.out / CHECKPOINT)


def _epoch_line(run: _Run, row: dict, images_per_second: float) -> str:
    """One line per epoch for the console: loss, top-1 when evaluated, lr, images/s and the time left."""
    done = row["epoch"] - run.start_epoch + 1
    left = (run.config.optim.epochs - row["epoch"]) * sum(h["seconds"] for h in run.history[-done:]) / done
    top1 = "" if not np.isfinite(row["top1"]) else f", top-1 {100 * row['top1']:.2f} %"
    return (f"epoch {row['epoch']}/{run.config.optim.epochs}: loss {row['loss']:.4f}{top1}, lr {row['lr']:.3g}, "
            f"{images_per_second:.0f} images/s, about {left:.0f} s left")


def train(config: TrainConfig | None = None, *, out_dir=None, resume=None, progress: bool = True,
          stop_after_epoch: int | None = None, force: bool = False, log: bool | None = None) -> Path:
    """Train one model; returns its output folder. ``resume``: a folder of an interrupted run. The test set is
    evaluated every ``config.evaluation.every`` epochs and after the last.

    ``progress``: a bar over each epoch's batches. ``log`` (default: as ``progress``): the line ``run folder:
    <folder>`` first, one line per epoch (loss, top-1, lr, images/s, time left) and a final summary — the lines a
    batch or cluster log keeps without the bar. ``stop_after_epoch`` simulates an interruption (for tests). A
    non-finite loss stops the run at once (RunDiverged, a FloatingPointError naming epoch, iteration and learning
    rate), recorded in the folder's ``diverged.json``: such a folder is never resumed. ``out_dir`` must be new or
    empty unless ``force`` (same-named files are then replaced; nothing is deleted)."""
    log = progress if log is None else log
    config, out = _resolve_run(config, out_dir, resume, force=force)
    run = _start(config, out, resuming=resume is not None and (out / CHECKPOINT).exists())
    if log and run.rank == 0:
        tqdm.write(f"run folder: {out}" + (f" (resumed after epoch {run.start_epoch - 1})" if run.start_epoch > 1
                                            else ""))
    result, saved = None, time.perf_counter()
    for epoch in range(run.start_epoch, config.optim.epochs + 1):
        started = time.perf_counter()
        try:
            trained = _train_epoch(run, epoch, progress)
        except RunDiverged as error:
            if run.rank == 0:
                record_divergence(out, error)
            raise
        row = {"epoch": epoch, **trained, "top1": np.nan, "many": np.nan, "medium": np.nan, "few": np.nan,
               "val_top1": np.nan, "train_top1": np.nan}
        images = row.pop("images")
        if _evaluate_now(config, epoch):
            result = evaluate(run.model, run.data.test, run.data.counts, batch_size=config.evaluation.batch_size,
                              amp=run.amp)
            row.update({k: result[k] for k in ("top1", "many", "medium", "few")})
        if run.data.val is not None:
            row["val_top1"] = top1(run.model, run.data.val, batch_size=config.evaluation.batch_size, amp=run.amp)
        run.history.append({**row, "seconds": time.perf_counter() - started})
        stopping = stop_after_epoch is not None and epoch >= stop_after_epoch
        if epoch == config.optim.epochs or stopping or time.perf_counter() - saved >= CHECKPOINT_SECONDS:
            _save_epoch(run, epoch)
            saved = time.perf_counter()
        if log and run.rank == 0:
            tqdm.write(_epoch_line(run, row, images * run.world / run.history[-1]["seconds"]))
        if stop_after_epoch is not None and epoch >= stop_after_epoch and epoch < config.optim.epochs:
            return out
    if result is None:  # resumed after the last epoch had been saved: evaluate the final model once
        result = evaluate(run.model, run.data.test, run.data.counts, batch_size=config.evaluation.batch_size,
                          amp=run.amp)
    if run.rank == 0:
        # the final model on its own training images (no augmentation): how far it fits what it was trained on
        run.history[-1]["train_top1"] = top1(run.model, run.data.train, batch_size=config.evaluation.batch_size,
                                             amp=run.amp)
        write_tables(out, run.history, run.criterion.log_rows())
        write_per_class(out, run.data, result, config)
        if log:
            tqdm.write(f"done: {config.optim.epochs} epochs, top-1 {100 * result['top1']:.2f} % (many / medium / few "
                       f"{_percent(result['many'])} / {_percent(result['medium'])} / {_percent(result['few'])}), "
                       f"{sum(h['seconds'] for h in run.history):.0f} s")
    return out


def _percent(value: float) -> str:
    return "—" if not np.isfinite(value) else f"{100 * value:.1f} %"
