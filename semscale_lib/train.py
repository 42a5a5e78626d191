"""One trainer for every method: CE/focal/LDAM/BS/LA × none/CB/DRW/DSB re-weighting (SPEC §5–§6).

``train(config)`` (or ``python -m semscale_lib train ...``) writes into its own folder, never into another run's:
``config.json`` (every setting, versions, device), ``metrics.csv`` (per epoch: loss, lr, top-1, many/medium/few),
``per_class.csv`` (final per-class accuracy, count, semantic scale), ``weights.csv`` (DSB refreshes, subsampled)
and ``checkpoint.pt`` (rewritten every epoch). ``resume=<folder>`` continues an interrupted run; on the CPU the
resumed run ends with exactly the metrics of an uninterrupted one.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.distributed as dist
from tqdm.auto import tqdm

from . import paths
from .batches import TensorBatches
from .list_batches import ListBatches
from .data import DATASETS, load_dataset, long_tailed_subset, named_counts
from .dsb import POOL_MODES, DSBSettings, DynamicReweighting, weights_log_row
from .imbalance import quantify_imbalance
from .scale import pool_features
from .losses import LOSSES, ClassWeighting, SemanticScaleWeighting, build_loss, class_balanced_weights
from .metrics import group_accuracy, per_class_accuracy
from .models import MODELS, build_model

REWEIGHTS = ("none", "cb", "drw", "dsb", "static")
OPTIMIZERS = ("sgd", "adam")
SCHEDULES = ("step", "exp", "linear", "constant")
NO_FLIP = {"mnist", "digits"}  # digits are not mirror-symmetric
IMAGE_LIST = "imagelist"      # dataset name for ImageNet-LT / iNaturalist style `path label` list files

CHECKPOINT = "checkpoint.pt"


@dataclass
class TrainConfig:
    """Every setting of a training run. Fields marked [ours] are choices the paper does not state."""
    dataset: str = "fashion-mnist-lt"   # a name from DATASETS, "-lt" suffix for a long-tailed training set
    imbalance_factor: float | None = 100.0
    profile: str = "exp"                # "exp", "step" or a named count table ("mnist-lt-1", "mnist-lt-2")
    split_seed: int = 0
    model: str = "resnet-tiny"
    loss: str = "ce"
    reweight: str = "none"
    epochs: int = 10
    batch_size: int = 128
    optimizer: str = "sgd"
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    schedule: str = "step"              # step: ×0.1 at each milestone; exp: ×lr_gamma per epoch; linear decay
    milestones: tuple[float, ...] = (0.8, 0.9)   # fractions of `epochs` (160 and 180 of 200)
    lr_step_factor: float = 0.1         # step schedule: lr × this at each milestone
    lr_gamma: float = 0.98
    warmup_epochs: int = 0
    augment: bool = True
    seed: int = 0
    device: str = "auto"
    focal_gamma: float = 1.0            # [ours] the paper does not state γ
    cb_beta: float = 0.9999
    drw_start: float = 0.8              # fraction of epochs at which DRW switches on (160/200)
    ldam_max_margin: float = 0.5
    ldam_scale: float = 30.0
    la_tau: float = 1.0
    dsb_stage_epochs: int = 5
    dsb_alpha: float = 2.0
    dsb_eps: float = 1.0
    dsb_pool: str = "fifo"
    dsb_pool_dim: int | None = 64
    dsb_refresh_every: int = 1
    dsb_normalize: str = "sum1"
    weights_log_every: int = 20         # log every k-th DSB refresh (plus the first of each epoch)
    eval_batch_size: int = 512
    data_root: str | None = None
    image_root: str | None = None       # dataset "imagelist": folder the list files' paths are relative to
    train_list: str | None = None
    test_list: str | None = None
    image_size: int = 224
    num_workers: int = 4
    class_weights: tuple[float, ...] | None = None   # reweight="static": fixed class weights (C,)
    preset: str | None = None

    def validate(self) -> None:
        base, _ = split_dataset_name(self.dataset)
        checks = [(base in DATASETS or self.dataset == IMAGE_LIST,
                   f"unknown dataset {self.dataset!r}; valid: {', '.join(sorted(DATASETS))} (add -lt for "
                   f"long-tailed) or {IMAGE_LIST!r} with image_root, train_list, test_list"),
                  (self.dataset != IMAGE_LIST or None not in (self.image_root, self.train_list, self.test_list),
                   "dataset 'imagelist' needs image_root, train_list and test_list"),
                  (self.model in MODELS, f"unknown model {self.model!r}; valid: {', '.join(MODELS)}"),
                  (self.loss in LOSSES, f"unknown loss {self.loss!r}; valid: {', '.join(LOSSES)}"),
                  (self.reweight in REWEIGHTS, f"unknown reweight {self.reweight!r}; valid: {', '.join(REWEIGHTS)}"),
                  (self.optimizer in OPTIMIZERS, f"unknown optimizer {self.optimizer!r}; valid: {OPTIMIZERS}"),
                  (self.schedule in SCHEDULES, f"unknown schedule {self.schedule!r}; valid: {SCHEDULES}"),
                  (self.dsb_pool in POOL_MODES, f"unknown dsb_pool {self.dsb_pool!r}; valid: {POOL_MODES}"),
                  (self.epochs >= 1, "epochs must be ≥ 1"), (self.batch_size >= 1, "batch_size must be ≥ 1"),
                  (self.lr > 0, "lr must be > 0")]
        if split_dataset_name(self.dataset)[1] and self.profile in ("exp", "step"):
            checks.append((self.imbalance_factor is not None and self.imbalance_factor >= 1,
                           f"imbalance_factor must be ≥ 1 for a long-tailed dataset, got {self.imbalance_factor}"))
        if self.reweight == "static":
            checks.append((self.class_weights is not None and len(self.class_weights) > 0
                           and all(isinstance(w, (int, float)) and w >= 0 for w in self.class_weights),
                           "reweight='static' needs class_weights: a list of C numbers ≥ 0"))
        for ok, message in checks:
            if not ok:
                raise ValueError(message)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def split_dataset_name(name: str) -> tuple[str, bool]:
    """"fashion-mnist-lt" → ("fashion-mnist", True); "cifar10" → ("cifar10", False)."""
    return (name[:-3], True) if name.endswith("-lt") else (name, False)


PRESETS: dict[str, dict] = {
    # The paper's correlation protocol (SPEC §6, Table 1): Adam, lr 0.01 × 0.98 per epoch, batch 64, no
    # augmentation. Epochs are not given [ours: 30]; weight decay not given [ours: 0]. IF 200 as in Table 1.
    "paper-table1": dict(dataset="cifar10-lt", imbalance_factor=200.0, model="resnet18", optimizer="adam",
                         lr=0.01, schedule="exp", lr_gamma=0.98, batch_size=64, augment=False, weight_decay=0.0,
                         epochs=30, warmup_epochs=0),
    # The community CIFAR-LT protocol (SPEC §6 [ours]): ResNet-32, batch 128, 200 epochs, SGD 0.9, lr 0.1,
    # 5-epoch warm-up, lr × 0.01 at 160 and again at 180 (as the LDAM-DRW code), wd 2e-4, crop 32 pad 4 + flip.
    "cifar-lt": dict(dataset="cifar100-lt", imbalance_factor=100.0, model="resnet32", optimizer="sgd", lr=0.1,
                     momentum=0.9, weight_decay=2e-4, schedule="step", milestones=(0.8, 0.9), lr_step_factor=0.01,
                     warmup_epochs=5,
                     batch_size=128, epochs=200, augment=True),
    # [ours] a few-minute CPU version on Fashion-MNIST-LT: same recipe, fewer epochs, DSB stage n scaled down.
    "cpu-quick": dict(dataset="fashion-mnist-lt", imbalance_factor=100.0, model="resnet-tiny", optimizer="sgd",
                      lr=0.05, momentum=0.9, weight_decay=5e-4, schedule="step", milestones=(0.8, 0.9),
                      warmup_epochs=1, batch_size=128, epochs=8, augment=True, dsb_stage_epochs=2),
}


def make_config(preset: str | None = None, **overrides) -> TrainConfig:
    """A TrainConfig from a named preset (or the defaults) with explicit overrides on top."""
    settings = {}
    if preset is not None:
        if preset not in PRESETS:
            raise ValueError(f"unknown preset {preset!r}; valid: {', '.join(PRESETS)}")
        settings.update(PRESETS[preset], preset=preset)
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = set(overrides) - known
    if unknown:
        raise ValueError(f"unknown settings {sorted(unknown)}; valid: {sorted(known)}")
    settings.update(overrides)
    for key in ("milestones", "class_weights"):
        if settings.get(key) is not None:
            settings[key] = tuple(settings[key])
    config = TrainConfig(**settings)
    config.validate()
    return config


# ----------------------------------------------------------------------------------------------------------------
# pieces of a run
# ----------------------------------------------------------------------------------------------------------------
def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


@dataclass
class RunData:
    train: object                 # TensorBatches (in-memory datasets) or ListBatches (image lists)
    test: object
    counts: np.ndarray            # training samples per class (C,)
    classes: list[str]            # class names, index = label
    in_channels: int
    split_file: str | None


def load_run_data(config: TrainConfig, device="cpu") -> RunData:
    """Training set (long-tailed when the dataset name ends in -lt; split saved under data/splits) and test set,
    as batch sources on ``device``. ``imagelist``: the ``path label`` files ``train_list``/``test_list`` under
    ``image_root`` (ImageNet-LT, iNaturalist), read by a DataLoader with ``num_workers`` workers."""
    if config.dataset == IMAGE_LIST:
        train = ListBatches(config.image_root, config.train_list, image_size=config.image_size,
                            num_workers=config.num_workers, device=device)
        test = ListBatches(config.image_root, config.test_list, image_size=config.image_size,
                           num_workers=config.num_workers, device=device)
        counts = np.bincount(train.labels.numpy(), minlength=int(max(train.labels.max(), test.labels.max())) + 1)
        classes, in_channels, split_file = [str(c) for c in range(len(counts))], 3, None
    else:
        base, long_tailed = split_dataset_name(config.dataset)
        train_arrays = load_dataset(base, train=True, root=config.data_root)
        test_arrays = load_dataset(base, train=False, root=config.data_root)
        split_file = None
        if long_tailed:
            named = config.profile not in ("exp", "step")
            train_arrays, split_file = long_tailed_subset(
                train_arrays, imbalance_factor=None if named else config.imbalance_factor,
                counts=named_counts(config.profile) if named else None, profile=config.profile,
                seed=config.split_seed)
        counts = np.bincount(train_arrays.labels, minlength=len(train_arrays.classes))
        pad = 4 if train_arrays.images.shape[1] >= 28 else 1
        train = TensorBatches(train_arrays.images, train_arrays.labels, device=device, pad=pad,
                              flip=base not in NO_FLIP)
        test = TensorBatches(test_arrays.images, test_arrays.labels, device=device,
                             mean=train.mean.flatten().cpu().numpy(), std=train.std.flatten().cpu().numpy())
        classes, in_channels = list(train_arrays.classes), train_arrays.images.shape[-1]
    if np.any(counts == 0):
        raise ValueError(f"classes {np.flatnonzero(counts == 0).tolist()} are missing from the training set")
    return RunData(train, test, counts, classes, in_channels, None if split_file is None else str(split_file))


def make_optimizer_and_schedule(model, config: TrainConfig):
    params = model.parameters()
    if config.optimizer == "sgd":
        optimizer = torch.optim.SGD(params, lr=config.lr, momentum=config.momentum,
                                    weight_decay=config.weight_decay)
    else:
        optimizer = torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
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


def make_loss(config: TrainConfig, counts: np.ndarray):
    options = {"focal": {"gamma": config.focal_gamma},
               "ldam": {"max_margin": config.ldam_max_margin, "scale": config.ldam_scale},
               "logit-adjusted": {"tau": config.la_tau}}.get(config.loss, {})
    base = build_loss(config.loss, counts, **options)
    if config.reweight == "dsb":
        return SemanticScaleWeighting(base, normalize=config.dsb_normalize)
    return ClassWeighting(base)


def class_weights_for_epoch(config: TrainConfig, counts: np.ndarray, epoch: int):
    """Static class weights of cb / drw / static for this epoch (1-based); None = unweighted."""
    if config.reweight == "static":
        return torch.tensor(config.class_weights, dtype=torch.float32)
    if config.reweight == "cb" or (config.reweight == "drw" and epoch > round(config.drw_start * config.epochs)):
        return class_balanced_weights(counts, config.cb_beta)
    return None


@torch.no_grad()
def evaluate(model, batches: TensorBatches, counts: np.ndarray, *, batch_size: int, amp: bool = False):
    """Top-1 (over test samples), per-class accuracy (C,), many/medium/few; plus the embeddings (N, D)."""
    was_training = model.training
    model.eval()
    predictions, embeddings = [], []
    for inputs, _ in batches.ordered(batch_size):
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


def environment_info(device: torch.device) -> dict:
    import torchvision
    info = {"python": platform.python_version(), "torch": torch.__version__, "torchvision": torchvision.__version__,
            "numpy": np.__version__, "device": str(device), "platform": platform.platform(),
            "threads": torch.get_num_threads()}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def default_out_dir(config: TrainConfig) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    name = f"{config.dataset}-{config.model}-{config.loss}-{config.reweight}-seed{config.seed}-{stamp}"
    return paths.runs_root() / "train" / name


# ----------------------------------------------------------------------------------------------------------------
# the run
# ----------------------------------------------------------------------------------------------------------------
def _comparable(config_dict: dict) -> dict:
    ignored = {"device", "data_root", "eval_batch_size"}
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in config_dict.items() if k not in ignored}


def _write_tables(out: Path, history: list[dict], weight_rows: list[dict]) -> None:
    pd.DataFrame(history).to_csv(out / "metrics.csv", index=False)
    if weight_rows:
        pd.DataFrame(weight_rows).to_csv(out / "weights.csv", index=False)


def _atomic_save(obj, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _distributed() -> tuple[int, int]:
    """(rank, world size); under ``torchrun`` (WORLD_SIZE > 1) the process group is initialised here
    (NCCL on CUDA, gloo on the CPU)."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and dist.is_available() and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def train(config: TrainConfig | None = None, *, out_dir=None, resume=None, progress: bool = True,
          stop_after_epoch: int | None = None) -> Path:
    """Train one model; returns its output folder. ``resume``: a folder of an interrupted run (its config is used;
    a different ``config`` is an error). ``stop_after_epoch`` simulates an interruption (for tests)."""
    if resume is not None:
        out = Path(resume)
        saved = json.loads((out / "config.json").read_text())["config"]
        if config is not None and _comparable(saved) != _comparable(config.to_dict()):
            diff = {k: (saved.get(k), v) for k, v in _comparable(config.to_dict()).items()
                    if _comparable(saved).get(k) != v}
            raise ValueError(f"resume folder {out} was trained with a different config: {diff} (saved, given)")
        config = make_config(**{k: v for k, v in saved.items()})
        if not (out / CHECKPOINT).exists():
            raise ValueError(f"{out} has no {CHECKPOINT} to resume from")
    else:
        config = config or TrainConfig()
        config.validate()
        out = Path(out_dir) if out_dir is not None else default_out_dir(config)
        if out.exists() and any(out.iterdir()):
            raise ValueError(f"output folder {out} is not empty; pick a new one or resume it with resume={out}")
    rank, world = _distributed()
    if world > 1:
        dist.barrier()  # every rank has checked the output folder before rank 0 writes into it
    device = resolve_device(config.device)
    if device.type == "cuda" and world > 1:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    if device.type == "cpu":
        torch.use_deterministic_algorithms(True)
    amp = device.type == "cuda"

    data = load_run_data(config, device)
    train_batches, test_batches = data.train, data.test
    num_classes = len(data.counts)

    torch.manual_seed(config.seed)
    model = build_model(config.model, num_classes, in_channels=data.in_channels,
                        normalized_classifier=config.loss == "ldam").to(device)
    if amp:
        model = model.to(memory_format=torch.channels_last)
    net = model
    if world > 1:
        net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if amp else None)
    optimizer, scheduler = make_optimizer_and_schedule(model, config)
    loss_fn = make_loss(config, data.counts).to(device)
    dsb = None
    if config.reweight == "dsb":
        dsb = DynamicReweighting(num_classes, DSBSettings(
            stage_epochs=config.dsb_stage_epochs, alpha=config.dsb_alpha, eps=config.dsb_eps,
            pool_mode=config.dsb_pool, pool_dim=config.dsb_pool_dim, refresh_every=config.dsb_refresh_every,
            normalize=config.dsb_normalize), dataset_size=len(train_batches), device=device)
    generator = torch.Generator().manual_seed(config.seed)
    history: list[dict] = []
    weight_rows: list[dict] = []
    start_epoch = 1

    if resume is not None:
        state = torch.load(out / CHECKPOINT, map_location=device, weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        # the class weights are a buffer that is None in a fresh loss, which load_state_dict would reject
        loss_state = dict(state["loss"])
        weights = loss_state.pop("weights", None)
        loss_fn.load_state_dict(loss_state)
        loss_fn.set_weights(weights)
        generator.set_state(state["generator"])
        history, weight_rows = state["history"], state["weight_rows"]
        if dsb is not None:
            dsb.load_state_dict(state["dsb"])
        start_epoch = state["epoch"] + 1
    elif rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.json").write_text(json.dumps(
            {"config": config.to_dict(), "environment": environment_info(device), "split_file": data.split_file,
             "train_counts": data.counts.tolist(), "world_size": world}, indent=2))

    per_rank = config.batch_size
    result = None
    for epoch in range(start_epoch, config.epochs + 1):
        started = time.perf_counter()
        if config.reweight in ("cb", "drw", "static"):
            loss_fn.set_weights(class_weights_for_epoch(config, data.counts, epoch))
        order = torch.randperm(len(train_batches), generator=generator)
        order = order[:len(order) - len(order) % world][rank::world]  # equal shares: DDP needs equal step counts
        model.train()
        total, seen, refreshes = 0.0, 0, 0
        for indices, inputs, targets in tqdm(
                train_batches.epoch(order, per_rank, generator=generator, augment=config.augment),
                total=math.ceil(len(order) / per_rank), desc=f"epoch {epoch}/{config.epochs}",
                disable=not progress or rank != 0, leave=False):
            if amp:
                inputs = inputs.contiguous(memory_format=torch.channels_last)
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
                logits, features = net(inputs, return_features=True)
            if dsb is not None:
                refreshed = dsb.step(epoch, features.float(), targets, indices)
                if refreshed is not None:
                    weights, scales = refreshed
                    loss_fn.set_weights(weights.float())
                    if refreshes % config.weights_log_every == 0:
                        weight_rows.append(weights_log_row(epoch, dsb.iteration, weights, scales))
                    refreshes += 1
            loss = loss_fn(logits.float(), targets)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(targets)
            seen += len(targets)
        lr = optimizer.param_groups[0]["lr"]
        scheduler.step()
        if dsb is not None:
            dsb.pool.rebuild()
        result = evaluate(model, test_batches, data.counts, batch_size=config.eval_batch_size, amp=amp)
        history.append({"epoch": epoch, "loss": total / max(seen, 1), "lr": lr, "top1": result["top1"],
                        "many": result["many"], "medium": result["medium"], "few": result["few"],
                        "seconds": time.perf_counter() - started})
        if rank == 0:
            _write_tables(out, history, weight_rows)
            state = {"epoch": epoch, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                     "scheduler": scheduler.state_dict(), "loss": loss_fn.state_dict(),
                     "generator": generator.get_state(), "history": history, "weight_rows": weight_rows,
                     "dsb": None if dsb is None else dsb.state_dict()}
            _atomic_save(state, out / CHECKPOINT)
        if stop_after_epoch is not None and epoch >= stop_after_epoch and epoch < config.epochs:
            return out
    if result is None:  # resumed after the last epoch had been saved: evaluate the final model once
        result = evaluate(model, test_batches, data.counts, batch_size=config.eval_batch_size, amp=amp)
    if rank == 0:
        _write_per_class(out, data, result, config)
    return out


FEATURES_FILE = "test_features.npz"
MAX_SAVED_DIMS = 512


def _write_per_class(out: Path, data: RunData, result: dict, config: TrainConfig) -> None:
    """per_class.csv: final test accuracy, training count and the semantic scales of the test embeddings;
    test_features.npz: those embeddings (average-pooled to 512 dims if wider) with their labels."""
    embeddings = pool_features(result["embeddings"], MAX_SAVED_DIMS)
    test_labels = data.test.labels.cpu().numpy()
    np.savez_compressed(out / FEATURES_FILE, features=embeddings, labels=test_labels)
    table = quantify_imbalance(embeddings, test_labels, alpha=config.dsb_alpha, num_classes=len(data.counts),
                               class_names=data.classes)
    table = table.rename(columns={"count": "test_count"})
    table.insert(2, "train_count", data.counts)
    table.insert(3, "accuracy", result["per_class"])
    table.to_csv(out / "per_class.csv", index=False)


def load_run(out_dir) -> dict:
    """config, metrics, per_class and weights of a finished run folder as python objects / DataFrames."""
    out = Path(out_dir)
    run = {"config": json.loads((out / "config.json").read_text()),
           "metrics": pd.read_csv(out / "metrics.csv")}
    for name in ("per_class", "weights"):
        path = out / f"{name}.csv"
        run[name] = pd.read_csv(path) if path.exists() else None
    if (out / FEATURES_FILE).exists():
        with np.load(out / FEATURES_FILE) as saved:
            run["test_features"], run["test_labels"] = saved["features"], saved["labels"]
    return run


__all__ = ["TrainConfig", "PRESETS", "make_config", "train", "load_run", "evaluate", "REWEIGHTS"]
