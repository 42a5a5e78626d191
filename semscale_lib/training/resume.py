"""Which folder a run trains into, and whether a run folder may be continued (``train(resume=folder)``).

A folder is resumed only when it is the same run: its settings (those that decide what it trains), the code that
trains it (:func:`~.provenance.code_digest`) and a checkpoint that fits the run's model. A run that diverged is
never resumed (it would diverge again). Every refusal is a ValueError naming the folder and what to do; the folder
is left as it is.
"""
from __future__ import annotations

import json
import time
import zipfile
from pathlib import Path

from ..paths import claim_output_dir
from . import provenance
from .config import TrainConfig, make_config
from .device import check_device
from .reuse import comparable_settings
from .runs import CHECKPOINT, default_out_dir

DIVERGED_FILE = "diverged.json"
CHECKPOINT_PARTS = ("epoch", "model", "optimizer", "scheduler", "weighting", "generator", "history")


class RunDiverged(FloatingPointError):
    """A non-finite loss: ``epoch`` and ``iteration`` (1-based), the learning rate then and the loss value."""

    def __init__(self, loss: float, epoch: int, iteration: int, lr: float, folder: Path):
        super().__init__(f"non-finite loss ({loss}) in epoch {epoch}, iteration {iteration}, at learning rate "
                         f"{lr:g} (run folder {folder})")
        self.loss, self.epoch, self.iteration, self.lr = loss, epoch, iteration, lr


def record_divergence(folder: Path, error: RunDiverged) -> Path:
    """Write ``diverged.json`` into the run folder: where and at which learning rate the loss became non-finite."""
    path = Path(folder) / DIVERGED_FILE
    path.write_text(json.dumps({"epoch": error.epoch, "iteration": error.iteration, "lr": error.lr,
                                "loss": str(error.loss), "message": str(error),
                                "time": time.strftime("%Y-%m-%d %H:%M:%S")}, indent=2) + "\n")
    return path


def resolve_run(config, out_dir, resume, force: bool = False) -> tuple[TrainConfig, Path]:
    """(config, folder) of a new run or of the run ``resume`` continues (its saved config; a different ``config``
    is an error, except for the settings that may change on resume: device, data_root, eval_batch_size). A new run's
    folder must be new or empty unless ``force`` (:func:`semscale_lib.paths.claim_output_dir`: same-named files are
    replaced, nothing is deleted). A run killed before its first checkpoint restarts from scratch in its folder.
    Refused: a folder that is no run, a checkpoint that is not a readable torch file, a run that diverged, and a
    run trained by other code (another code digest, or none recorded)."""
    if resume is None:
        config = config or TrainConfig()
        config.validate()
        check_device(config.device)
        out = claim_output_dir(out_dir if out_dir is not None else default_out_dir(config), force=force,
                               hint=" (or resume the run in it with --resume)", create=False)
        return config, out
    out, record = _run_record(resume)
    saved = record["config"]
    _refuse_diverged(out)
    recorded, current = provenance.recorded_digest(record), provenance.code_digest()
    if recorded != current:
        raise ValueError(f"cannot resume {out}: it was trained by other code (code digest "
                         f"{provenance.describe_digest(recorded)}; this checkout's: {current}), and continuing its "
                         "optimizer state with this code would not be the same run; start a new run (another --out) "
                         "instead; the folder is left as it is")
    if config is not None and comparable_settings(saved) != comparable_settings(config.to_dict()):
        given, before = comparable_settings(config.to_dict()), comparable_settings(saved)
        diff = {k: (before.get(k), v) for k, v in given.items() if before.get(k) != v}
        raise ValueError(f"resume folder {out} was trained with a different config: {diff} (saved, given)")
    config = config if config is not None else make_config(**saved)   # a given config may move the run's device
    config.validate()
    check_device(config.device)
    checkpoint = out / CHECKPOINT
    if checkpoint.exists() and not zipfile.is_zipfile(checkpoint):
        raise ValueError(corrupt_checkpoint(checkpoint, "not a complete torch checkpoint"))
    return config, out


def _run_record(resume) -> tuple[Path, dict]:
    """(folder, its config.json) of a folder to resume; ValueError when it is no run folder."""
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
        record = json.loads((out / "config.json").read_text())
        if not isinstance(record, dict) or not isinstance(record["config"], dict):
            raise TypeError("'config' is not a mapping")
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as error:
        raise ValueError(f"cannot resume {out}: its config.json is not a run's settings ({type(error).__name__}: "
                         f"{error})") from None
    return out, record


def _refuse_diverged(out: Path) -> None:
    path = out / DIVERGED_FILE
    if not path.exists():
        return
    try:
        seen = json.loads(path.read_text())
        where = (f"non-finite loss in epoch {seen['epoch']}, iteration {seen['iteration']}, at learning rate "
                 f"{seen['lr']:g}; ")
    except (OSError, ValueError, KeyError, TypeError):
        where = ""
    raise ValueError(f"cannot resume {out}: the run diverged ({where}recorded in {path}), and resuming it would "
                     "diverge again; start a new run (another --out) with a smaller --lr; the folder is left as it is")


def corrupt_checkpoint(checkpoint: Path, why: str) -> str:
    return (f"cannot resume {checkpoint.parent}: its {checkpoint.name} is truncated or corrupt ({why}); move it "
            "away to restart this run from scratch in the same folder, or start a new run")


def model_mismatch(expected: dict, found: dict) -> str:
    """How the tensors of a checkpoint's model (``found``: name → tensor) differ from the run's model's
    (``expected``): missing, unexpected and reshaped names, a few of each; empty when they fit."""
    def some(names) -> str:
        return ", ".join(names[:3]) + (", …" if len(names) > 3 else "")
    missing = [k for k in expected if k not in found]
    unexpected = [k for k in found if k not in expected]
    reshaped = [f"{k}: {tuple(found[k].shape)} in the checkpoint, {tuple(expected[k].shape)} for the run's model"
                for k in expected if k in found and tuple(found[k].shape) != tuple(expected[k].shape)]
    parts = [f"{len(missing)} tensors missing ({some(missing)})" if missing else "",
             f"{len(unexpected)} unexpected ({some(unexpected)})" if unexpected else "",
             f"{len(reshaped)} of another shape ({some(reshaped)})" if reshaped else ""]
    return "; ".join(p for p in parts if p)


def restore(run, state, out: Path) -> None:
    """Load a checkpoint's ``state`` into a started run (model, optimizer, scheduler, weighting rule, generator,
    history); ValueError naming the folder when the checkpoint does not fit the run's settings."""
    checkpoint = out / CHECKPOINT
    if not isinstance(state, dict) or any(part not in state for part in CHECKPOINT_PARTS):
        lacking = CHECKPOINT_PARTS if not isinstance(state, dict) else [p for p in CHECKPOINT_PARTS if p not in state]
        raise ValueError(corrupt_checkpoint(checkpoint, f"it lacks {', '.join(lacking)}"))
    fit = model_mismatch(run.model.state_dict(), state["model"]) if isinstance(state["model"], dict) else \
        "it holds no model state"
    if fit:
        raise ValueError(f"cannot resume {out}: its {CHECKPOINT} is not of the model its config.json names "
                         f"({run.config.model}, {len(run.data.counts)} classes): {fit}; the folder is left as it is: "
                         "start a new run, or resume the folder this checkpoint was written in")
    parts = {"model": run.model, "optimizer": run.optimizer, "scheduler": run.scheduler, "weighting": run.criterion}
    for name, part in parts.items():
        try:
            part.load_state_dict(state[name])
        except (RuntimeError, ValueError, KeyError, TypeError, IndexError) as error:
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise ValueError(f"cannot resume {out}: the {name} state in its {CHECKPOINT} does not fit the run's "
                             f"settings ({first}); the folder is left as it is: start a new run") from None
    run.generator.set_state(state["generator"])
    run.history, run.start_epoch = state["history"], state["epoch"] + 1
