# %% [markdown]
# # 06 · Beyond the paper: which class geometry tracks per-class accuracy, and which weights help
#
# **Our question, not a claim of the paper.** The paper weights classes by a ∝ 1/S because S tracks per-class
# accuracy (Table 1, one dataset at a time). Notebook 02 saw the inter-class term W track accuracy on balanced
# Fashion-MNIST while S′ ran the other way. So: across datasets, models and seeds, which per-class quantity
# tracks test accuracy best — S, its parts S′ and W, the counts, or an established class-difficulty measure — and
# does DSB help more when its weights come from that quantity instead of S?
#
# **Hypotheses, stated before any result.**
# - H1 (one per predictor): per-class test top-1 rises with the predictor across studies (pooled r > 0).
#   The paper's reading predicts it for S; the difficulty measures (k-NN accuracy, Fisher ratio, nearest class
#   centre) are expected to track accuracy by construction; for effective rank and for N on
#   long-tailed data we make no prediction.
# - H2 (one per pair): on long-tailed data, DSB with a ∝ 1/q beats plain CE, beats the paper's DSB-S, and beats
#   LDAM-DRW, for q ∈ {S′, W, the best predictor}; and DSB-S beats CE and LDAM-DRW.
#
# **Design.** A *study* is one (dataset, model, setting): a balanced and a long-tailed version of each dataset,
# one or more model families (the defaults: cnn-small; the cpu profile adds resnet-tiny), ≥ 3 seeds. Per study, every predictor is computed per class on the trained models' embeddings
# of their own training images (the primary source, as in notebook 02; the training pixels are a sensitivity
# analysis), averaged over seeds, and correlated over classes with per-class test top-1 (Pearson r, Spearman ρ).
# Studies are pooled per predictor by a random-effects meta-analysis of Fisher-z values (DerSimonian–Laird,
# statsmodels), with I² for heterogeneity. The predictor DSB is weighted by is **chosen on training data only**:
# the highest pooled r with per-class accuracy *on the training images*, before any weighted run is trained.
#
# **Every comparison is counted** and each family is held to a family-wise 95 % level by Bonferroni: the H1
# verdicts use (1 − 0.05/m₁) CIs over the m₁ predictors, the H2 verdicts (1 − 0.05/m₂) paired-t CIs over the m₂
# pairs. Verdicts: *held* if the CI lies above 0, *contradicted* if below 0, *inconclusive* otherwise (never a
# refutation), *not testable* where a predictor is undefined (N on balanced data) or seeds are too few.

# %%
import warnings

warnings.filterwarnings("ignore", message="IProgress not found")  # tqdm without ipywidgets
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from IPython.display import Markdown, display

from semscale_lib import plotting
from semscale_lib.studies.claims import write_claims
from semscale_lib.studies.correlation import setting_overrides
from semscale_lib.studies.notebook import prepare_out_dir, require_versions, save_and_show
from semscale_lib.studies.reweighting import (
    compare_pairs, group_table, long_tailed_base, pair_claims, run_methods, summary_table,
)
from semscale_lib.studies.tracking import (
    PREDICTORS, PRIMARY_SOURCE, SENSITIVITY_SOURCE, choose_dsb_target, forest_table, pooled_ranking,
    ranking_claims, study_correlations, study_tables, weighting_methods, weighting_pairs,
)
from semscale_lib.training import resolve_device

versions = require_versions({"semscale_lib": "0.1", "numpy": "1.24", "pandas": "2.0", "torch": "2.1",
                             "matplotlib": "3.7", "scipy": "1.10", "statsmodels": "0.14"})

# %% tags=["parameters"]
studies = [["fashion-mnist", "cnn-small"], ["digits", "cnn-small"]]  # (dataset, model); cpu profile: + resnet-tiny
imbalance_factor = 100          # of each long-tailed setting (exponential profile), unless per_dataset says else
balanced_per_class = 500        # the balanced setting: this many images per class; None: the whole set
preset = "cpu-quick"
epochs = 2
per_dataset = {"digits": {"epochs": 10, "imbalance_factor": 10, "many_threshold": 100, "few_threshold": 20}}
seeds = [0, 1, 2]
weighting_datasets = ["digits"]  # long-tailed versions; the cpu profile: fashion-mnist and mnist
weighting_model = "cnn-small"
dsb_stage_epochs = 1            # n: plain loss for epochs ≤ n (digits: scaled with its epochs, see below)
dsb_alpha = 2.0
dsb_normalize = "mean1"
dsb_refresh_every = 10          # the same for every DSB arm (a k-NN target costs a pass over the pool)
many_threshold = 1000           # many-shot: more training images than this (per_dataset may override)
few_threshold = 200             # few-shot: fewer training images than this
family_alpha = 0.05             # family-wise error of each family of verdicts (Bonferroni)
device = "auto"
threads = 1                     # torch CPU threads, fixed: float sums depend on it; None: torch default (the
                                # runner's --jobs uses the other cores for other notebooks)
out_dir = "outputs/06_what_tracks_accuracy"
runs_dir = "outputs/training-runs"  # training runs, shared by the notebooks (same settings: trained once)

# %%
if threads:
    torch.set_num_threads(threads)
print(f"device {resolve_device(device)}, {torch.get_num_threads()} torch threads")
out = prepare_out_dir(out_dir)


def setting_of(dataset: str, key: str):
    """A per-dataset override of one of the parameters above, else the parameter itself."""
    return per_dataset.get(dataset, {}).get(key, globals()[key])


# %% [markdown]
# ## Training: every study's balanced and long-tailed setting × seed

# %% tags=["nbval-ignore-output"]
frames = []
for dataset, model in studies:
    settings = setting_overrides(dataset, imbalance_factor=setting_of(dataset, "imbalance_factor"),
                                 balanced_per_class=balanced_per_class)
    runs = run_methods(settings, seeds, {"model": model, "epochs": setting_of(dataset, "epochs"), "device": device},
                       runs_dir, preset=preset)
    frames.append(runs.assign(dataset=dataset, model=model))
runs = pd.concat(frames, ignore_index=True).rename(columns={"method": "setting"})
runs["study"] = runs["dataset"] + " · " + runs["model"] + " · " + runs["setting"]
runs.to_csv(out / "study_runs.csv", index=False)
runs[["study", "seed", "top1", "seconds"]].round(4)

# %% tags=["nbval-check-output"]
runs.groupby("study", sort=False)["top1"].agg(["mean", "std", "count"]).mul([100, 100, 1]).round(1)

# %% [markdown]
# ## Per-class predictors and their correlation with per-class accuracy, per study

# %%
correlations, selection = {}, []
for source in (PRIMARY_SOURCE, SENSITIVITY_SOURCE):
    frames = []
    for study, part in runs.groupby("study", sort=False):
        tables = study_tables(part.sort_values("seed")["run_dir"].tolist(), source=source)
        tables["predictors"].assign(accuracy=tables["accuracy"], train_accuracy=tables["train_accuracy"]).to_csv(
            out / f"predictors_{study.replace(' · ', '_')}_{source.split(' ')[0]}.csv", index=False)
        frames.append(study_correlations(tables["predictors"], tables["accuracy"]).assign(study=study))
        if source == PRIMARY_SOURCE:
            selection.append(study_correlations(tables["predictors"], tables["train_accuracy"]).assign(study=study))
    correlations[source] = pd.concat(frames, ignore_index=True)
    correlations[source].to_csv(out / f"correlations_{source.split(' ')[0]}.csv", index=False)
selection = pd.concat(selection, ignore_index=True)
per_study = correlations[PRIMARY_SOURCE].pivot(index="predictor", columns="study", values="pearson_r")
per_study.loc[list(PREDICTORS)].round(2)

# %% [markdown]
# ## H1: pooled r per predictor (random effects), ranked
# The CI is family-wise: (1 − 0.05/m₁) for each of the m₁ predictors. k: studies where the predictor is defined.

# %% tags=["nbval-check-output"]
m1 = len(PREDICTORS)
confidence_rank = 1 - family_alpha / m1
ranking = pooled_ranking(correlations[PRIMARY_SOURCE], confidence=confidence_rank)
spearman = pooled_ranking(correlations[PRIMARY_SOURCE], column="spearman_rho", confidence=confidence_rank)
ranking["spearman (pooled)"] = ranking["predictor"].map(spearman.set_index("predictor")["r"])
pixels = pooled_ranking(correlations[SENSITIVITY_SOURCE], confidence=confidence_rank)
ranking["r on pixels"] = ranking["predictor"].map(pixels.set_index("predictor")["r"])
ranking.to_csv(out / "ranking.csv", index=False)
print(f"{m1} predictors; each CI at {100 * confidence_rank:.2f} % (family-wise 95 %)")
ranking[["predictor", "k", "r", "ci_low", "ci_high", "i2", "spearman (pooled)", "r on pixels"]].round(2)

# %%
fig, ax = plt.subplots(figsize=(7, 0.45 * len(ranking) + 1.5))
plotting.ranking_plot(ranking.dropna(subset=["r"]), ax=ax,
                      title=f"pooled r with per-class top-1 ({100 * confidence_rank:.1f} % CI), "
                            f"{runs['study'].nunique()} studies")
save_and_show(fig, out / "ranking.png")

# %%
forest_predictors = [p for p in ranking.dropna(subset=["r"])["predictor"]]
fig, axes = plotting.grid(len(forest_predictors), ncols=3, panel_size=(7, 0.4 * runs["study"].nunique() + 1.6))
for ax, predictor in zip(axes.ravel(), forest_predictors):
    plotting.forest_plot(forest_table(correlations[PRIMARY_SOURCE], predictor, confidence=confidence_rank), ax=ax,
                         title=predictor)
for ax in axes.ravel()[len(forest_predictors):]:
    ax.set_visible(False)
save_and_show(fig, out / "forest.png")

# %% [markdown]
# ## Choosing DSB's target on training data only
# The same pooling, against per-class accuracy of the models on their own training images (no test image is
# used); the highest positive pooled r among the predictors a DSB run can compute from its storage pool wins.

# %% tags=["nbval-check-output"]
selection_ranking = pooled_ranking(selection)
selection_ranking.to_csv(out / "selection_ranking.csv", index=False)
best_predictor, best_target = choose_dsb_target(selection_ranking)
print(f"chosen on training accuracy: {best_predictor} (DSB target {best_target!r})")
selection_ranking[["predictor", "k", "r", "ci_low", "ci_high"]].round(2)

# %% [markdown]
# ## H2: DSB with a ∝ 1/q for q = S (paper), S′, W and the chosen predictor, against CE and LDAM-DRW

# %% tags=["nbval-ignore-output"]
methods = weighting_methods(best_target)
pairs = weighting_pairs(methods)
m2 = len(pairs) * len(weighting_datasets)
confidence_pairs = 1 - family_alpha / m2
weighted = {}
for dataset in weighting_datasets:
    dataset_epochs = setting_of(dataset, "epochs")
    base = long_tailed_base(dataset, setting_of(dataset, "imbalance_factor"), model=weighting_model,
                            epochs=dataset_epochs, device=device, dsb_alpha=dsb_alpha, dsb_normalize=dsb_normalize,
                            dsb_stage_epochs=max(1, round(dsb_stage_epochs * dataset_epochs / epochs)),
                            dsb_refresh_every=dsb_refresh_every)
    weighted[dataset] = run_methods(methods, seeds, base, runs_dir, preset=preset)
    weighted[dataset].to_csv(out / f"weighting_runs_{dataset}.csv", index=False)
print(f"{len(methods)} arms × {len(seeds)} seeds × {len(weighting_datasets)} datasets; "
      f"{m2} pairs, each CI at {100 * confidence_pairs:.2f} % (family-wise 95 %)")
pd.concat([w.assign(dataset=d) for d, w in weighted.items()])[["dataset", "method", "seed", "top1", "seconds"]].round(4)

# %% tags=["nbval-check-output"]
summaries, comparisons = [], []
for dataset, results in weighted.items():
    groups = group_table(results, many=setting_of(dataset, "many_threshold"), few=setting_of(dataset, "few_threshold"))
    summaries.append(summary_table(groups, order=list(methods)).assign(dataset=dataset))
    comparisons.append(compare_pairs(results, pairs, confidence=confidence_pairs).assign(dataset=dataset))
summary = pd.concat(summaries, ignore_index=True)
summary.to_csv(out / "weighting_summary.csv", index=False)
comparison = pd.concat(comparisons, ignore_index=True)
comparison.drop(columns="record").to_csv(out / "weighting_pairs.csv", index=False)
summary

# %% tags=["nbval-check-output"]
comparison[["dataset", "method", "baseline", "n_seeds", "mean_without", "mean_with", "diff", "ci_low", "ci_high",
            "verdict"]].round(2)

# %% [markdown]
# ## What we found (both families, whichever way they went)

# %% tags=["nbval-check-output"]
data = (f"{runs['study'].nunique()} studies ({', '.join(f'{d} · {m}' for d, m in studies)}; balanced and "
        f"long-tailed each), seeds {seeds}, predictors on {PRIMARY_SOURCE}")
claims = ranking_claims(ranking, correlations[PRIMARY_SOURCE], confidence=confidence_rank, data=data,
                        figures=["ranking.png", "forest.png"])
lines = [f"- **H1, {c['claim_id'].removeprefix('tracks-')}: {c['verdict']}.** {c['measured']}" for c in claims]
for dataset in weighting_datasets:
    pair_records, pair_lines = pair_claims(
        comparison[comparison["dataset"] == dataset].drop(columns="dataset"), claim="{method} beats {baseline}",
        claim_id="weights-{method}-vs-{baseline}", section="ours, beyond Sec. 4.2", dataset=dataset, paper={},
        data=f"{dataset}-LT IF {setting_of(dataset, 'imbalance_factor'):g}, {weighting_model}, "
             f"{setting_of(dataset, 'epochs')} epochs, seeds {seeds}, DSB target chosen on training accuracy: "
             f"{best_predictor}", scope="beyond")
    claims += pair_records
    lines += [f"- H2 ({dataset}) " + line.removeprefix("- ") for line in pair_lines]
counts = pd.Series([c["verdict"] for c in claims]).value_counts().reindex(
    ["held", "contradicted", "inconclusive", "not testable"], fill_value=0)
lines.insert(0, f"**{len(claims)} verdicts** ({m1} predictors, {m2} pairs): " +
             ", ".join(f"{n} {v}" for v, n in counts.items()) + ".")
display(Markdown("\n".join(lines)))
claims_file = write_claims(
    out, "06_what_tracks_accuracy", claims, figures=["ranking.png", "forest.png"],
    parameters={"studies": studies, "imbalance_factor": imbalance_factor, "balanced_per_class": balanced_per_class,
                "preset": preset, "epochs": epochs, "per_dataset": per_dataset, "seeds": seeds,
                "weighting_datasets": weighting_datasets, "weighting_model": weighting_model,
                "dsb_stage_epochs": dsb_stage_epochs, "dsb_refresh_every": dsb_refresh_every,
                "chosen_target": best_target},
    tables=[{"title": "Pooled r per predictor (random effects, family-wise CI)", "file": "ranking.csv"},
            {"title": "Weighting arms: top-1 and many/medium/few, mean ± sd over seeds (%)",
             "file": "weighting_summary.csv"}])
