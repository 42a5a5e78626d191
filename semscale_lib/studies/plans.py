"""Which training runs each notebook asks for, from its parameters alone: what ``semscale plan`` lists and
``semscale train-runs`` trains before the notebooks run (they then find every run finished, and only read and
measure).

A planner takes a notebook's parameters (its defaults overlaid with the job's) and returns a :class:`NotebookPlan`:
the runs it can name now (TrainConfigs, the same the notebook builds with the same library calls), the runs it can
name only once others have finished (notebook 03's 1/S class weights come from a trained CE model: ``waiting``), and
the runs the notebook decides from trained numbers while it runs (notebook 06's arm weighted by the predictor it
chooses: ``deferred``, trained by the notebook). ``train-runs`` plans again after each wave, so waiting runs are
trained by it too. Notebooks without a planner (00, the report) train nothing.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

from ..data import load_dataset
from ..training import make_config
from ..training.trainer import run_folder_name
from .correlation import setting_overrides
from .marginal_effect import capped_sizes, design_sizes, nested_sample_volumes, premise, subset_settings
from .plateau import budget_bases
from .reweighting import long_tailed_base, method_configs, remembered_static_weights, static_dsb_weights
from .tracking import WEIGHTING_TARGETS, weighting_methods

FINISHED_FILE = "per_class.csv"   # a run folder holding it is finished (the trainer writes it last)


@dataclass
class Waiting:
    """Runs a planner can name only once others have finished: what they are, how many, and a config of the same
    size (data and budget) to estimate their cost by."""
    what: str
    count: int
    like: object = None            # TrainConfig


@dataclass
class NotebookPlan:
    runs: list = field(default_factory=list)        # TrainConfigs, in the order the notebook asks for them
    waiting: list[Waiting] = field(default_factory=list)   # groups of runs named once others finish
    deferred: list[str] = field(default_factory=list)  # one line per group of runs the notebook decides itself

    def add(self, configs) -> None:
        self.runs.extend(configs.values() if isinstance(configs, Mapping) else configs)


def finished(runs_dir, config) -> Path | None:
    """The folder of ``config``'s run under ``runs_dir`` when that run has finished, else None."""
    folder = Path(runs_dir) / run_folder_name(config)
    return folder if (folder / FINISHED_FILE).is_file() else None


def _budget(plan: NotebookPlan, method: Mapping, seed: int, base: Mapping, preset) -> None:
    """The runs of :func:`~semscale_lib.studies.plateau.budget_check` (the doubled budget trains only when the
    runs hold out validation images; a split too small to hold any makes it unneeded, not harmful)."""
    for name, settings in zip(("budget", "doubled budget"), budget_bases(method, base, preset=preset)):
        plan.add(method_configs({name: dict(method)}, [seed], settings, preset=preset))


def plan_marginal_effect(p: Mapping, runs_dir) -> NotebookPlan:
    """Notebook 01: one run per trained m (the saturation point of Σ S′ added, computed from pixels as the notebook
    does) and seed, and the budget check of the first seed at every m."""
    plan = NotebookPlan()
    data = load_dataset(p["dataset"], train=True)
    sizes = capped_sizes(p["sizes"], data.labels, data.num_classes)
    train_sizes = capped_sizes(p["train_sizes"], data.labels, data.num_classes)
    state = premise(nested_sample_volumes(data, sizes, seed=p["subset_seed"]), level=p["saturation_level"])
    common = dict(min_epochs=p["min_epochs"], min_steps=p["min_steps"], preset=p["preset"], dataset=p["dataset"],
                  model=p["model"], device=p["device"])
    trained = design_sizes(train_sizes, state["saturation_m"])
    for m in trained:
        for seed in p["seeds"]:
            plan.add([make_config(p["preset"], **subset_settings(m, seed, **common))])
    for m in trained:
        _budget(plan, {}, p["seeds"][0], subset_settings(m, p["seeds"][0], **common), p["preset"])
    return plan


def _correlation_runs(plan: NotebookPlan, p: Mapping, dataset: str, model: str, *, imbalance_factor, per_class,
                      epochs, image_root=None, image_size=None) -> None:
    settings = setting_overrides(dataset, imbalance_factor=imbalance_factor, balanced_per_class=per_class,
                                 image_root=image_root, image_size=image_size)
    common = {"model": model, "epochs": epochs, "device": p["device"]}
    plan.add(method_configs(settings, p["seeds"], common, preset=p["preset"]))
    for setting in settings.values():
        _budget(plan, setting, p["seeds"][0], common, p["preset"])


def plan_imbalance_on_balanced_data(p: Mapping, runs_dir) -> NotebookPlan:
    """Notebook 02: the balanced and the long-tailed setting × seed, and each setting's budget check."""
    plan = NotebookPlan()
    _correlation_runs(plan, p, p["dataset"], p["model"], imbalance_factor=p["imbalance_factor"],
                      per_class=p["balanced_per_class"], epochs=p["epochs"], image_root=p["image_root"],
                      image_size=p["image_size"])
    return plan


def plan_static_weights(p: Mapping, runs_dir) -> NotebookPlan:
    """Notebook 03: every loss plain (and CE) × seed; every loss with the 1/S weights of that seed's CE model, once
    the CE model has finished; the CE budget check."""
    plan = NotebookPlan()
    base = long_tailed_base(p["dataset"], p["imbalance_factor"], model=p["model"], epochs=p["epochs"],
                            device=p["device"])
    losses = list(p["losses"])
    plain = method_configs({loss: {"loss": loss, "reweight": "none"} for loss in dict.fromkeys(["ce", *losses])},
                           p["seeds"], base, preset=p["preset"])
    plan.add(plain)
    for seed in p["seeds"]:
        ce_dir = finished(runs_dir, plain[("ce", int(seed))])
        if ce_dir is None:
            plan.waiting.append(Waiting(f"{len(losses)} run(s) with 1/S class weights, seed {seed}: named once "
                                        "its CE model has finished", len(losses), plain[("ce", int(seed))]))
            continue
        settings = dict(alpha=p["alpha"], normalize=p["normalize"], source=p["weights_source"],
                        pool_dim=p["pool_dim"])
        weights = remembered_static_weights(ce_dir, **settings)
        if weights is None:
            weights, _ = static_dsb_weights(ce_dir, **settings, device=p["device"])
        weighted = {f"{loss} + S-weights": {"loss": loss, "reweight": "static",
                                            "class_weights": [float(w) for w in weights]} for loss in losses}
        plan.add(method_configs(weighted, [seed], base, preset=p["preset"]))
    _budget(plan, {"loss": "ce", "reweight": "none"}, p["seeds"][0], base, p["preset"])
    return plan


def plan_dynamic_reweighting(p: Mapping, runs_dir) -> NotebookPlan:
    """Notebook 04: every method × seed, the budget check of the first plain method, and the stage-length sweep
    (first seed)."""
    plan = NotebookPlan()
    methods = p["methods"]
    base = long_tailed_base(p["dataset"], p["imbalance_factor"], image_root=p["image_root"],
                            image_size=p["image_size"], model=p["model"], epochs=p["epochs"], device=p["device"],
                            dsb_stage_epochs=p["dsb_stage_epochs"], dsb_alpha=p["dsb_alpha"],
                            dsb_normalize=p["dsb_normalize"], dsb_log_every=p["weights_log_every"])
    plan.add(method_configs(methods, p["seeds"], base, preset=p["preset"]))
    plain = next(name for name, settings in methods.items() if settings.get("reweight", "none") == "none")
    _budget(plan, methods[plain], p["seeds"][0], base, p["preset"])
    extra = {f"{p['stage_method']}, n = {n}": {**methods[p["stage_method"]], "dsb_stage_epochs": n}
             for n in p["stage_sweep"] if n != p["dsb_stage_epochs"]}
    plan.add(method_configs(extra, p["seeds"][:1], base, preset=p["preset"]))
    return plan


def plan_what_tracks_accuracy(p: Mapping, runs_dir) -> NotebookPlan:
    """Notebook 06: every study's two settings × seed with their budget checks, and the weighting arms (plain CE,
    LDAM-DRW, DSB with 1/S, 1/S′, 1/W) × seed per weighting dataset with the CE budget check. The arm weighted by
    the predictor the notebook chooses from its trained numbers is deferred to the notebook (when that predictor is
    not S, S′ or W)."""
    plan = NotebookPlan()

    def setting_of(dataset: str, key: str):
        return p["per_dataset"].get(dataset, {}).get(key, p[key])

    for dataset, model in p["studies"]:
        _correlation_runs(plan, p, dataset, model, imbalance_factor=setting_of(dataset, "imbalance_factor"),
                          per_class=setting_of(dataset, "balanced_per_class"), epochs=setting_of(dataset, "epochs"))
    methods = weighting_methods(None)
    for dataset in p["weighting_datasets"]:
        base = long_tailed_base(dataset, setting_of(dataset, "imbalance_factor"), model=p["weighting_model"],
                                epochs=setting_of(dataset, "epochs"), device=p["device"], dsb_alpha=p["dsb_alpha"],
                                dsb_normalize=p["dsb_normalize"], dsb_stage_epochs=p["dsb_stage_epochs"],
                                dsb_refresh_every=p["dsb_refresh_every"])
        plan.add(method_configs(methods, p["seeds"], base, preset=p["preset"]))
        _budget(plan, methods["CE"], p["seeds"][0], base, p["preset"])
        plan.deferred.append(f"DSB weighted by the predictor chosen on training accuracy, {dataset}, "
                             f"{len(p['seeds'])} seed(s): trained by the notebook when that predictor is not one of "
                             f"{', '.join(WEIGHTING_TARGETS)}")
    return plan


#: Planners whose runs depend on finished runs (planned again after every wave); the others plan once.
PLANNERS_READING_RUNS = frozenset({"03_semantic_scale_balanced_losses"})

#: Notebook stem → its planner.
PLANNERS: dict[str, Callable[[Mapping, object], NotebookPlan]] = {
    "01_marginal_effect": plan_marginal_effect,
    "02_imbalance_on_balanced_data": plan_imbalance_on_balanced_data,
    "03_semantic_scale_balanced_losses": plan_static_weights,
    "04_dynamic_reweighting": plan_dynamic_reweighting,
    "06_what_tracks_accuracy": plan_what_tracks_accuracy,
}

__all__ = ["FINISHED_FILE", "NotebookPlan", "PLANNERS", "PLANNERS_READING_RUNS", "Waiting", "finished", "plan_dynamic_reweighting",
           "plan_imbalance_on_balanced_data", "plan_marginal_effect", "plan_static_weights",
           "plan_what_tracks_accuracy"]
