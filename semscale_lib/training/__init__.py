"""Training: one config (:mod:`.config`), one data path (:mod:`semscale_lib.data.run_data`), one step (:mod:`.step`: the criterion and
``train_step``), one loop (:mod:`.trainer`) and the run folder it writes (:mod:`.runs`)."""
from ..data.run_data import RunData, load_run_data, training_arrays
from .config import PRESETS, TrainConfig, config_names, make_config, split_dataset_name
from .runs import RunRecord, embed_run, load_run, run_config, training_images
from .step import Criterion, make_loss, train_step
from .evaluation import evaluate
from .schedules import make_optimizer_and_schedule
from .trainer import resolve_device, train

__all__ = ["Criterion", "PRESETS", "RunData", "RunRecord", "TrainConfig", "config_names", "embed_run", "evaluate", "load_run",
           "load_run_data", "make_config", "make_loss", "make_optimizer_and_schedule", "resolve_device",
           "run_config", "split_dataset_name", "train", "train_step", "training_arrays", "training_images"]
