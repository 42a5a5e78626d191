# %% [markdown]
# # 03 · Semantic-scale-balanced losses: every base loss with and without 1/S weights (Sec. 4.1, Eq. 4)
#
# **Claim (paper, Sec. 4, Table 2).** Multiplying the per-sample loss of any base loss by a_y ∝ 1/S_y — the
# inverse imbalance scale of the sample's class — improves it: CE, focal, LDAM, balanced softmax (BS) and more
# all gain on ImageNet-LT and iNaturalist 2018 (e.g. CE 44.4 → 49.2, LDAM 51.1 → 52.3, BS 51.2 → 52.8).
#
# **Here.** The general scheme with *static* weights: S is measured once, from the features of a plain CE model
# (its embeddings of its own training set — no test data involved), and every base loss is trained with and
# without the weights a = 1/S, same seeds and schedule. The paper's DSB recomputes S during training from a
# feature pool: that dynamic version is notebook 04. Weights are normalised to mean 1 (`normalize="mean1"`,
# **ours**: the paper's Σ a = 1 would also divide the learning rate by C); the batch loss is the plain mean of the
# weighted per-sample losses (the `reduction` column says so in every table).
#
# **Verdicts** (our rule, decided in `semscale_lib.verdicts`), one per base loss X: the gain in top-1 points of
# X + 1/S over X, paired by seed — *held* if its 95 % paired-t CI lies above 0, *contradicted* if below 0,
# *inconclusive* otherwise; fewer than 3 seeds: *not testable*. A positive mean alone is not a confirmation.

# %%
import warnings

warnings.filterwarnings("ignore", message="IProgress not found")  # tqdm without ipywidgets
import matplotlib.pyplot as plt
import numpy as np
import torch
from IPython.display import Markdown, display

from semscale_lib.studies.claims import write_claims
from semscale_lib.studies.notebook import prepare_out_dir, require_versions, save_and_show
from semscale_lib.studies.reweighting import (
    PAPER_DSB_GAINS, compare_pairs, group_table, long_tailed_base, pair_claims, static_weighting_grid,
    summary_table,
)
from semscale_lib.training import resolve_device

versions = require_versions({"semscale_lib": "0.1", "numpy": "1.24", "pandas": "2.0", "torch": "2.1",
                             "matplotlib": "3.7"})

# %% tags=["parameters"]
dataset = "fashion-mnist"
imbalance_factor = 100          # long-tailed training set (exponential profile); None: the balanced one
model = "cnn-small"
preset = "cpu-quick"            # training recipe (semscale_lib.training.PRESETS)
epochs = 2
seeds = [0, 1, 2]               # the verdicts pair the seeds; fewer than 3: not testable
losses = ["ce", "ldam"]         # base losses X, each against X + 1/S (the cpu profile: also focal, balanced-softmax)
alpha = 2.0                     # α of W in S: 2 on long-tailed data, 1 on balanced data (paper)
normalize = "mean1"             # weights a ∝ 1/S with mean 1 [ours]; sum1 is the paper's text
weights_source = "train"        # S from the CE model's embeddings of its training set (train) or of the test set
pool_dim = 64                   # average-pool the embeddings to this size first (the paper's 64); None: full size
many_threshold = 1000           # many-shot: more training images than this [ours for Fashion-MNIST-LT; paper 100]
few_threshold = 200             # few-shot: fewer training images than this [ours; paper 20]
device = "auto"
threads = 1                     # torch CPU threads, fixed: float sums depend on it; None: torch default (the
                                # runner's --jobs uses the other cores for other notebooks)
out_dir = "outputs/03_semantic_scale_balanced_losses"
runs_dir = "outputs/training-runs"  # training runs, shared by the notebooks (same settings: trained once)

# %%
if threads:
    torch.set_num_threads(threads)
print(f"device {resolve_device(device)}, {torch.get_num_threads()} torch threads")
out = prepare_out_dir(out_dir)
base = long_tailed_base(dataset, imbalance_factor or None, model=model, epochs=epochs,
                        device=device)
data_label = f"{dataset}" + (f"-LT IF {imbalance_factor:g}" if imbalance_factor else " (balanced)")

# %% [markdown]
# ## Training: a plain CE model first (for S), then every loss without and with the 1/S weights

# %% tags=["nbval-ignore-output"]
results, weights = static_weighting_grid(losses, seeds, base, runs_dir, preset=preset, alpha=alpha,
                                            normalize=normalize, source=weights_source, pool_dim=pool_dim)
results.to_csv(out / "runs.csv", index=False)
weights.to_csv(out / "weights.csv", index=False)
results[["method", "seed", "top1", "seconds"]].round(4)

# %% [markdown]
# ## The static weights (first seed): S from the CE model's features, a ∝ 1/S

# %% tags=["nbval-check-output"]
first = weights[weights["seed"] == seeds[0]]
first[["name", "count", "normalized_scale", "interclass", "imbalance_scale", "weight"]].round(3)

# %% [markdown]
# ## Results: top-1 and many / medium / few (mean ± sd over seeds, %)

# %% tags=["nbval-check-output"]
groups = group_table(results, many=many_threshold, few=few_threshold)
groups.to_csv(out / "groups.csv", index=False)
order = [name for loss in losses for name in (loss, f"{loss} + S-weights")]
summary = summary_table(groups, order=order)
summary.to_csv(out / "summary.csv", index=False)
print(f"classes per group: many {groups['n_many'].iloc[0]}, medium {groups['n_medium'].iloc[0]}, "
      f"few {groups['n_few'].iloc[0]} (many > {many_threshold}, few < {few_threshold} training images)")
summary

# %% tags=["nbval-check-output"]
pairs = compare_pairs(results, {f"{loss} + S-weights": loss for loss in losses})
pairs.drop(columns="record").to_csv(out / "pairs.csv", index=False)
pairs[["method", "baseline", "n_seeds", "mean_without", "mean_with", "diff", "ci_low", "ci_high", "verdict"]].round(2)

# %%
fig, axes = plt.subplots(1, 2, figsize=(12, 3.8))
x = np.arange(len(losses))
for offset, weighted, label in ((-0.2, False, "without"), (0.2, True, "with 1/S weights")):
    for ax, column in zip(axes, ("top1", "few")):
        sub = groups.assign(weighted=groups["method"].str.endswith(" + S-weights"),
                            loss=groups["method"].str.replace(" + S-weights", "", regex=False))
        sub = sub[sub["weighted"] == weighted].groupby("loss")[column]
        mean, sd = sub.mean().reindex(losses), sub.std(ddof=1).reindex(losses)
        ax.bar(x + offset, 100 * mean, width=0.4, yerr=100 * sd if len(seeds) > 1 else None, capsize=3,
               label=label)
bars = f"mean ± sd over {len(seeds)} seeds" if len(seeds) > 1 else "one seed, no error bar"
for ax, title, ylabel in zip(axes, ("overall top-1", f"few-shot accuracy, < {few_threshold} training images"),
                             ("top-1 (%)", "few-shot accuracy (%)")):
    ax.set_xticks(x, losses)
    ax.set(title=f"{title} ({bars})", ylabel=ylabel)
    ax.legend(fontsize=8)
save_and_show(fig, out / "losses_with_and_without.png")

# %% [markdown]
# ## Did the claim hold on this data?

# %% tags=["nbval-check-output"]
claims, lines = pair_claims(
    pairs, claim="static 1/S class weights improve {baseline}", claim_id="static-weights-{baseline}",
    section="Sec. 4.1, Eq. 4 (static S: ours)", dataset=dataset,
    paper={f"{loss} + S-weights": PAPER_DSB_GAINS[loss] + " (dynamic DSB)"
           for loss in losses if loss in PAPER_DSB_GAINS},
    data=f"{data_label}, {model}, {epochs} epochs, seeds {seeds}, S from CE {weights_source}-set features")
lines.append(f"- {len(pairs)} comparisons, one per base loss: " + ", ".join(
    f"{(pairs['verdict'] == v).sum()} {v}" for v in dict.fromkeys(pairs["verdict"])) + ".")
display(Markdown("\n".join(lines)))
claims_file = write_claims(
    out, "03_semantic_scale_balanced_losses", claims, figures=["losses_with_and_without.png"],
    parameters={"dataset": dataset, "imbalance_factor": imbalance_factor, "model": model, "preset": preset,
                "epochs": epochs, "seeds": seeds, "losses": losses, "normalize": normalize, "alpha": alpha},
    tables=[{"title": "Top-1 and many/medium/few, mean ± sd over seeds (%)", "file": "summary.csv"}])
