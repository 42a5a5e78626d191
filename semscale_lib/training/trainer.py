"""The one training loop: every loss × every weighting rule, on a whole, long-tailed or subsampled training set.

``train(config)`` (or ``python -m semscale_lib train ...``) writes into its own folder (:mod:`.runs`);
``resume=<folder>`` continues an interrupted run, and on the CPU ends with exactly the metrics of an
uninterrupted one. Per epoch the loop asks the run's weighting rule (:mod:`semscale_lib.weights`) for weights,
and after every forward pass hands it the batch's embeddings: trainer → weights → loss, in that direction.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import sys
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from tqdm.auto import tqdm

try:
    import fcntl   # POSIX; elsewhere runs are not locked against a second process
except ImportError:  # pragma: no cover
    fcntl = None

from ..data import save_split
from ..losses import ClassWeighting, build_loss
from ..metrics import group_accuracy, per_class_accuracy
from ..models import build_model
from ..paths import claim_output_dir
from ..weights import build_weighting
from .config import TrainConfig, make_config
from .data import RunData, load_run_data
from .runs import CHECKPOINT, SUBSET_FILE, atomic_save, default_out_dir, write_per_class, write_tables


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def make_optimizer_and_schedule(model, config: TrainConfig):
    """SGD (momentum, weight decay) or Adam, and a LambdaLR: per epoch, linear warm-up then step / exp / linear /
    constant; with a step budget (``max_steps``), per step (:func:`_step_budget_factor`)."""
    params = model.parameters()
    if config.optimizer == "sgd":
        optimizer = torch.optim.SGD(params, lr=config.lr, momentum=config.momentum,
                                    weight_decay=config.weight_decay)
    else:
        optimizer = torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    if config.max_steps is not None:
        return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, _step_budget_factor(config))
    milestones = [round(f * config.epochs) for f in config.milestones]

    def factor(epoch: int) -> float:          # epoch counts from 0 here (LambdaLR convention)
        if epoch < config.warmup_epochs:
            return (epoch + 1) / config.warmup_epochs
        if config.schedule == "step":
            return config.lr_step_factor ** sum(epoch >= m for m in milestones)
        if config.schedule == "exp":
            return config.lr_gamma ** epoch
        if config.schedule == "linear":
            return max(0.0, 1.0 - epoch / config.epochs)
        return 1.0

    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def _step_budget_factor(config: TrainConfig):
    """With a step budget (``max_steps``) the schedule runs over steps, so that runs of different epoch lengths
    with the same budget see the same learning rate at every step: "step" multiplies by ``lr_step_factor`` at
    each milestone (a fraction of ``max_steps``), "linear" decays to 0, "constant" keeps it."""
    milestones = [round(f * config.max_steps) for f in config.milestones]

    def factor(step: int) -> float:           # optimizer steps taken so far
        if config.schedule == "step":
            return config.lr_step_factor ** sum(step >= m for m in milestones)
        if config.schedule == "linear":
            return max(0.0, 1.0 - step / config.max_steps)
        return 1.0

    return factor


def make_loss(config: TrainConfig, counts: np.ndarray) -> ClassWeighting:
    """The config's base loss (per-sample) inside a :class:`ClassWeighting` with the run's batch reduction;
    the weights themselves are set by the weighting rule."""
    options = {"focal": {"gamma": config.focal_gamma},
               "ldam": {"max_margin": config.ldam_max_margin, "scale": config.ldam_scale},
               "logit-adjusted": {"tau": config.la_tau}}.get(config.loss, {})
    return ClassWeighting(build_loss(config.loss, counts, **options), reduction=config.reduction)


@torch.no_grad()
def evaluate(model, batches, counts: np.ndarray, *, batch_size: int, amp: bool = False) -> dict:
    """Top-1 (over test samples), per-class accuracy (C,), many/medium/few; plus the embeddings (N, D)."""
    was_training = model.training
    model.eval()
    predictions, embeddings = [], []
    for inputs, _ in batches.ordered(batch_size):
        inputs = inputs.contiguous(memory_format=torch.channels_last)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
            logits, features = model(inputs, return_features=True)
        predictions.append(logits.argmax(1).cpu())
        embeddings.append(features.float().cpu())
    model.train(was_training)
    predictions = torch.cat(predictions).numpy()
    targets = batches.labels.cpu().numpy()
    per_class = per_class_accuracy(predictions, targets, len(counts))
    groups = group_accuracy(per_class, counts)
    return {"top1": float((predictions == targets).mean()), "per_class": per_class,
            "many": groups["many"], "medium": groups["medium"], "few": groups["few"],
            "embeddings": torch.cat(embeddings).numpy()}


def deterministic_algorithms() -> None:
    """``torch.use_deterministic_algorithms(True)``, without the import of ``torch._inductor`` that the public call
    makes to set the compiler's own flag (≈ 3 s per process; eager training never reads it). When the compiler is
    already loaded, or torch lacks the internal setter, the public call is made."""
    setter = getattr(torch._C, "_set_deterministic_algorithms", None)
    if setter is None or "torch._inductor.config" in sys.modules:
        torch.use_deterministic_algorithms(True)
    else:
        setter(True)


def environment_info(device: torch.device) -> dict:
    from importlib.metadata import version   # not `import torchvision`: that costs seconds, for a version string

    info = {"python": platform.python_version(), "torch": torch.__version__, "torchvision": version("torchvision"),
            "numpy": np.__version__, "device": str(device), "platform": platform.platform(),
            "threads": torch.get_num_threads()}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def _comparable(config_dict: dict) -> dict:
    """The settings that decide what a run trains: where it runs is left out, and so are settings the run's
    re-weighting rule never reads (DSB settings unless ``reweight="dsb"``, class weights unless ``"static"``)."""
    ignored = {"device", "data_root", "eval_batch_size"}
    if config_dict.get("reweight") != "dsb":
        ignored.add("dsb")
    if config_dict.get("reweight") != "static":
        ignored.add("class_weights")
    return json.loads(json.dumps({k: v for k, v in config_dict.items() if k not in ignored}))


def settings_key(config: TrainConfig) -> str:
    """A 10-hex-digit digest of the settings that decide what ``config`` trains (not where it runs): two configs
    with the same key train the same model, so a folder named by it can be shared by every notebook that asks."""
    text = json.dumps(_comparable(config.to_dict()), sort_keys=True)
    return hashlib.sha1(text.encode()).hexdigest()[:10]


def run_folder_name(config) -> str:
    """The folder a run of ``config`` lives in under a shared runs folder: readable parts, then
    :func:`~semscale_lib.training.trainer.settings_key` — two notebooks that ask for the same settings share one
    run (trained once, reused after); different settings never share a folder."""
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in f"{config.dataset}-{config.model}")
    return f"{safe}-{config.loss}-{config.reweight}-seed{config.seed}-{settings_key(config)}"


def _distributed() -> tuple[int, int]:
    """(rank, world size); under ``torchrun`` (WORLD_SIZE > 1) the process group is initialised here
    (NCCL on CUDA, gloo on the CPU)."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and dist.is_available() and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def check_device(name: str) -> None:
    """Refuse (RuntimeError) a CUDA device this machine does not have, before anything is loaded or written."""
    if not str(name).startswith("cuda"):
        return
    if not torch.cuda.is_available():
        raise RuntimeError(f"CUDA was requested (--device {name}) but torch.cuda.is_available() is False; use "
                           "--device cpu or auto")
    index = torch.device(name).index
    if index is not None and index >= torch.cuda.device_count():
        raise RuntimeError(f"CUDA device {index} was requested (--device {name}) but this machine has "
                           f"{torch.cuda.device_count()} (cuda:0 … cuda:{torch.cuda.device_count() - 1})")


def _resolve_run(config, out_dir, resume, force: bool = False) -> tuple[TrainConfig, Path]:
    """(config, folder) of a new run or of the run ``resume`` continues (its saved config; a different ``config``
    is an error, except for the settings that may change on resume: device, data_root, eval_batch_size). A new run's
    folder must be new or empty unless ``force`` (:func:`semscale_lib.paths.claim_output_dir`: same-named files are
    replaced, nothing is deleted). A run killed before its first checkpoint restarts from scratch in its folder; a
    checkpoint that is not a readable torch file is refused."""
    if resume is None:
        config = config or TrainConfig()
        config.validate()
        check_device(config.device)
        out = claim_output_dir(out_dir if out_dir is not None else default_out_dir(config), force=force,
                               hint=" (or resume the run in it with --resume)", create=False)
        return config, out
    if not str(resume).strip():
        raise ValueError("--resume must name the folder of a run, got an empty path")
    out = Path(resume)
    if not out.exists():
        raise ValueError(f"cannot resume {out}: it is not a run folder (no such folder)")
    if not out.is_dir():
        raise ValueError(f"cannot resume {out}: it is not a run folder (it is a file)")
    if not (out / "config.json").is_file():
        raise ValueError(f"cannot resume {out}: it is not a run folder (no config.json)")
    try:
        saved = json.loads((out / "config.json").read_text())["config"]
        if not isinstance(saved, dict):
            raise TypeError("'config' is not a mapping")
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as error:
        raise ValueError(f"cannot resume {out}: its config.json is not a run's settings ({type(error).__name__}: "
                         f"{error})") from None
    if config is not None and _comparable(saved) != _comparable(config.to_dict()):
        given = _comparable(config.to_dict())
        diff = {k: (_comparable(saved).get(k), v) for k, v in given.items() if _comparable(saved).get(k) != v}
        raise ValueError(f"resume folder {out} was trained with a different config: {diff} (saved, given)")
    config = config if config is not None else make_config(**saved)   # a given config may move the run's device
    config.validate()
    check_device(config.device)
    checkpoint = out / CHECKPOINT
    if checkpoint.exists() and not zipfile.is_zipfile(checkpoint):
        raise ValueError(_corrupt_checkpoint(checkpoint, "not a complete torch checkpoint"))
    return config, out


def _corrupt_checkpoint(checkpoint: Path, why: str) -> str:
    return (f"cannot resume {checkpoint.parent}: its {checkpoint.name} is truncated or corrupt ({why}); move it "
            "away to restart this run from scratch in the same folder, or start a new run")


def _evaluate_now(config: TrainConfig, epoch: int) -> bool:
    return epoch == config.epochs or (config.eval_every > 0 and epoch % config.eval_every == 0)


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
    loss_fn: ClassWeighting
    weighting: object                         # a semscale_lib.weights.WeightRule
    generator: torch.Generator
    history: list = field(default_factory=list)
    start_epoch: int = 1


def _start(config: TrainConfig, out: Path, resuming: bool) -> _Run:
    """Device, data, model, optimizer, loss and weighting rule of a run; restored from the checkpoint when
    ``resuming``, else the folder's config.json (and subset split) written."""
    rank, world = _distributed()
    if world > 1:
        dist.barrier()  # every rank has checked the output folder before rank 0 writes into it
    device = resolve_device(config.device)
    if device.type == "cuda" and world > 1:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    if device.type == "cpu":
        deterministic_algorithms()
    amp = device.type == "cuda"
    data = load_run_data(config, device)
    torch.manual_seed(config.seed)
    model = build_model(config.model, len(data.counts), in_channels=data.in_channels,
                        normalized_classifier=config.loss == "ldam").to(device)
    model = model.to(memory_format=torch.channels_last)   # faster convolutions on CPU and GPU alike
    net = model if world == 1 else torch.nn.parallel.DistributedDataParallel(
        model, device_ids=[device.index] if amp else None)
    optimizer, scheduler = make_optimizer_and_schedule(model, config)
    run = _Run(config, out, data, device, amp, rank, world, model, net, optimizer, scheduler,
               make_loss(config, data.counts).to(device),
               build_weighting(config, data.counts, dataset_size=len(data.train), device=device),
               torch.Generator().manual_seed(config.seed))
    if resuming:
        try:
            state = torch.load(out / CHECKPOINT, map_location=device, weights_only=False)
        except Exception as error:  # truncated / corrupt file: one clear message, never a pickle traceback
            raise ValueError(_corrupt_checkpoint(out / CHECKPOINT, f"{type(error).__name__}: "
                                                 f"{str(error).splitlines()[0] if str(error) else ''}")) from error
        for name in ("model", "optimizer", "scheduler", "weighting"):
            getattr(run, name).load_state_dict(state[name])
        run.generator.set_state(state["generator"])
        run.history, run.start_epoch = state["history"], state["epoch"] + 1
    elif rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.json").write_text(json.dumps(
            {"config": config.to_dict(), "environment": environment_info(device), "split_file": data.split_file,
             "train_counts": data.counts.tolist(), "world_size": world, "reduction": config.reduction},
            indent=2))
        if data.subset_indices is not None:
            save_split(out / SUBSET_FILE, data.subset_indices,
                       meta={"dataset": config.dataset, "subset_per_class": config.subset_per_class,
                             "seed": config.split_seed, "counts": data.counts.tolist()})
    return run


def _train_epoch(run: _Run, epoch: int, progress: bool) -> dict:
    """One epoch (or what is left of the step budget): returns {loss (mean per sample), lr (at its start),
    images}. Raises FloatingPointError at the first non-finite loss."""
    config, data = run.config, run.data
    weights = run.weighting.epoch_weights(epoch)
    run.loss_fn.set_weights(None if weights is None else weights.to(run.device))
    order = torch.randperm(len(data.train), generator=run.generator)
    order = order[:len(order) - len(order) % run.world][run.rank::run.world]  # DDP needs equal step counts
    run.model.train()
    total, seen, lr = 0.0, 0, run.optimizer.param_groups[0]["lr"]
    per_epoch = math.ceil(len(order) / config.batch_size)
    steps = per_epoch if config.max_steps is None else min(per_epoch, config.max_steps - (epoch - 1) * per_epoch)
    batches = data.train.epoch(order, config.batch_size, generator=run.generator, augment=config.augment)
    for iteration, (indices, inputs, targets) in enumerate(tqdm(
            batches, total=steps, desc=f"epoch {epoch}/{config.epochs}", disable=not progress or run.rank != 0,
            leave=False), start=1):
        if iteration > steps:
            break
        inputs = inputs.contiguous(memory_format=torch.channels_last)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=run.amp):
            logits, features = run.net(inputs, return_features=True)
        if run.weighting.uses_features:
            refreshed = run.weighting.step(epoch, features, targets, indices)
            if refreshed is not None:
                run.loss_fn.set_weights(refreshed)
        loss = run.loss_fn(logits.float(), targets)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"non-finite loss ({float(loss.detach())}) in epoch {epoch}, iteration "
                                     f"{iteration}, at learning rate {lr:g} (run folder {run.out})")
        run.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        run.optimizer.step()
        if config.max_steps is not None:
            run.scheduler.step()
        total += float(loss.detach()) * len(targets)
        seen += len(targets)
    if config.max_steps is None:
        run.scheduler.step()
    run.weighting.end_epoch()
    return {"loss": total / max(seen, 1), "lr": lr, "images": seen}


def _save_epoch(run: _Run, epoch: int) -> None:
    """metrics.csv, weights.csv and the checkpoint after ``epoch`` (rank 0; the checkpoint written atomically)."""
    if run.rank != 0:
        return
    write_tables(run.out, run.history, run.weighting.log_rows())
    atomic_save({"epoch": epoch, "model": run.model.state_dict(), "optimizer": run.optimizer.state_dict(),
                 "scheduler": run.scheduler.state_dict(), "weighting": run.weighting.state_dict(),
                 "generator": run.generator.get_state(), "history": run.history}, run.out / CHECKPOINT)


def _epoch_line(run: _Run, row: dict, images_per_second: float) -> str:
    """One line per epoch for the console: loss, top-1 when evaluated, lr, images/s and the time left."""
    done = row["epoch"] - run.start_epoch + 1
    left = (run.config.epochs - row["epoch"]) * sum(h["seconds"] for h in run.history[-done:]) / done
    top1 = "" if not np.isfinite(row["top1"]) else f", top-1 {100 * row['top1']:.2f} %"
    return (f"epoch {row['epoch']}/{run.config.epochs}: loss {row['loss']:.4f}{top1}, lr {row['lr']:.3g}, "
            f"{images_per_second:.0f} images/s, about {left:.0f} s left")


def train(config: TrainConfig | None = None, *, out_dir=None, resume=None, progress: bool = True,
          stop_after_epoch: int | None = None, force: bool = False) -> Path:
    """Train one model; returns its output folder. ``resume``: a folder of an interrupted run. The test set is
    evaluated every ``config.eval_every`` epochs and after the last. ``progress``: a bar per epoch and one line
    per epoch (loss, top-1, lr, images/s, time left) plus a final summary. ``stop_after_epoch`` simulates an
    interruption (for tests). A non-finite loss stops the run at once (FloatingPointError naming epoch,
    iteration and learning rate); the last finished epoch's checkpoint stays, so the folder is resumable.
    ``out_dir`` must be new or empty unless ``force`` (same-named files are then replaced; nothing is deleted)."""
    config, out = _resolve_run(config, out_dir, resume, force=force)
    run = _start(config, out, resuming=resume is not None and (out / CHECKPOINT).exists())
    result = None
    for epoch in range(run.start_epoch, config.epochs + 1):
        started = time.perf_counter()
        row = {"epoch": epoch, **_train_epoch(run, epoch, progress), "top1": np.nan, "many": np.nan,
               "medium": np.nan, "few": np.nan}
        images = row.pop("images")
        if _evaluate_now(config, epoch):
            result = evaluate(run.model, run.data.test, run.data.counts, batch_size=config.eval_batch_size,
                              amp=run.amp)
            row.update({k: result[k] for k in ("top1", "many", "medium", "few")})
        run.history.append({**row, "seconds": time.perf_counter() - started})
        _save_epoch(run, epoch)
        if progress and run.rank == 0:
            tqdm.write(_epoch_line(run, row, images * run.world / run.history[-1]["seconds"]))
        if stop_after_epoch is not None and epoch >= stop_after_epoch and epoch < config.epochs:
            return out
    if result is None:  # resumed after the last epoch had been saved: evaluate the final model once
        result = evaluate(run.model, run.data.test, run.data.counts, batch_size=config.eval_batch_size, amp=run.amp)
    if run.rank == 0:
        write_per_class(out, run.data, result, config)
        if progress:
            tqdm.write(f"done: {config.epochs} epochs, top-1 {100 * result['top1']:.2f} % (many / medium / few "
                       f"{_percent(result['many'])} / {_percent(result['medium'])} / {_percent(result['few'])}), "
                       f"{sum(h['seconds'] for h in run.history):.0f} s; run folder {out}")
    return out


def _percent(value: float) -> str:
    return "—" if not np.isfinite(value) else f"{100 * value:.1f} %"


def train_or_reuse(config: TrainConfig, folder, *, progress: bool = False) -> Path:
    """Train ``config`` into ``folder`` unless it already holds that run: a finished run with the same settings
    is reused, an interrupted one is resumed. A folder holding anything else is refused (ValueError), never
    deleted. Two processes asking for the same folder at once (notebooks sharing a runs folder) take turns: the
    second waits on ``<folder>.lock`` and then reuses what the first trained."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    if fcntl is None:
        return _train_or_reuse_locked(config, folder, progress)
    with open(folder.with_name(folder.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            return _train_or_reuse_locked(config, folder, progress)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _train_or_reuse_locked(config: TrainConfig, folder: Path, progress: bool) -> Path:
    saved_file = folder / "config.json"
    if not folder.exists() or not any(folder.iterdir()):
        return train(config, out_dir=folder, progress=progress)
    same = saved_file.exists() and _comparable(json.loads(saved_file.read_text())["config"]) == \
        _comparable(config.to_dict())
    if not same:
        raise ValueError(f"{folder} holds something other than this run ({config.loss}/{config.reweight}, seed "
                         f"{config.seed}); delete it or choose another output folder")
    if (folder / "per_class.csv").exists():
        return folder
    return train(resume=folder, progress=progress)
