"""Runs shared by their settings: a folder named by what decides a run (its settings and the code that trains
it), trained once and reused by every notebook that asks for the same run.

A run trained by other code (another :func:`~.provenance.code_digest`) has another folder name, so it is never
reused; its folder stays as it was. A folder given by hand that holds a run of other settings or other code is
refused, never replaced.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

try:
    import fcntl   # POSIX; elsewhere runs are not locked against a second process
except ImportError:  # pragma: no cover
    fcntl = None

from . import provenance
from .config import TrainConfig


def comparable_settings(config_dict: dict) -> dict:
    """The settings that decide what a run trains: where it runs is left out, and so are settings the run's
    re-weighting rule never reads (DSB settings unless ``reweight="dsb"``, class weights unless ``"static"``)."""
    ignored = {"device", "data_root", "eval_batch_size"}
    if config_dict.get("reweight") != "dsb":
        ignored.add("dsb")
    if config_dict.get("reweight") != "static":
        ignored.add("class_weights")
    return json.loads(json.dumps({k: v for k, v in config_dict.items() if k not in ignored}))


def settings_key(config: TrainConfig) -> str:
    """A 10-hex-digit digest of the settings that decide what ``config`` trains (not where it runs) and of the code
    that trains it (:func:`~.provenance.code_digest`): two configs with the same key train the same model with the
    same code, so a folder named by it can be shared by every notebook that asks."""
    text = json.dumps({"settings": comparable_settings(config.to_dict()), "code": provenance.code_digest()},
                      sort_keys=True)
    return hashlib.sha1(text.encode()).hexdigest()[:10]


def run_folder_name(config) -> str:
    """The folder a run of ``config`` lives in under a shared runs folder: readable parts, then
    :func:`settings_key` — two notebooks that ask for the same settings share one run (trained once, reused
    after); different settings, or other training code, never share a folder."""
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in f"{config.data.dataset}-{config.model}")
    return f"{safe}-{config.loss.name}-{config.weighting.rule}-seed{config.optim.seed}-{settings_key(config)}"


def train_or_reuse(config: TrainConfig, folder, *, progress: bool = False) -> Path:
    """Train ``config`` into ``folder`` unless it already holds that run: a finished run with the same settings,
    trained by this code, is reused; an interrupted one is resumed. A folder holding anything else (other
    settings, a run of other code) is refused (ValueError), never deleted. Two processes asking for the same folder
    at once (notebooks sharing a runs folder) take turns: the second waits on ``<folder>.lock`` and then reuses what
    the first trained."""
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


SPLIT_FILE_HEADER = "# semscale split file"


def _only_split_files(folder: Path) -> bool:
    """True when ``folder`` holds nothing but split files (:func:`~semscale_lib.data.save_split`): a run killed after
    drawing its long-tailed split and before writing its config.json."""
    for path in folder.iterdir():
        try:
            with open(path) as fh:
                if not (path.is_file() and fh.readline().startswith(SPLIT_FILE_HEADER)):
                    return False
        except (OSError, UnicodeDecodeError):
            return False
    return True


def _train_or_reuse_locked(config: TrainConfig, folder: Path, progress: bool) -> Path:
    from .trainer import train   # the trainer imports this module

    saved_file = folder / "config.json"
    if not folder.exists() or not any(folder.iterdir()):
        return train(config, out_dir=folder, progress=progress)
    if not saved_file.exists() and _only_split_files(folder):   # killed while it drew its split: start it again
        return train(config, out_dir=folder, progress=progress, force=True)
    try:
        saved = json.loads(saved_file.read_text()) if saved_file.exists() else None
    except (OSError, ValueError):
        saved = None
    same = isinstance(saved, dict) and isinstance(saved.get("config"), dict) and \
        comparable_settings(saved["config"]) == comparable_settings(config.to_dict())
    if not same:
        raise ValueError(f"{folder} holds something other than this run ({config.loss.name}/"
                         f"{config.weighting.rule}, seed "
                         f"{config.optim.seed}); delete it or choose another output folder")
    recorded, current = provenance.recorded_digest(saved), provenance.code_digest()
    if recorded != current:
        raise ValueError(f"{folder} holds a run of these settings trained by other code (code digest "
                         f"{provenance.describe_digest(recorded)}; this checkout's: {current}); it is left as it is: "
                         "choose another folder (run_folder_name(config) names one per code digest)")
    if (folder / "per_class.csv").exists():
        return folder
    return train(resume=folder, progress=progress)
