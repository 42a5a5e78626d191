# %% [markdown]
# # 00 · Quickstart: the semantic scale of each class
#
# The paper (Ma et al., ICLR 2023) measures how much of the space a class's samples span, its **semantic scale**
# S′ = ½ log₂ det(I + (d/m) Z Zᵀ) of the class's m centred vectors of dimension d (Eq. 3). Applied to raw images
# resized to 16×16(×C) with pixels in [0, 1], S′ is the **sample volume** (Algorithm 1). With the class centres it
# also gives W = log₂(α + W′), the normalised mean distance to the other classes, and the imbalance scale
# S = S′/max S′ ⊙ W (Sec. 3.4.1).
#
# This notebook only measures: the per-class table of a real training set and a bar chart of it. No training,
# under a minute on a CPU.

# %%
import time
from typing import Optional

import matplotlib.pyplot as plt
from IPython.display import display

from semscale_lib import imbalance_summary, plotting, quantify_imbalance
from semscale_lib.data import load_dataset, long_tailed_subset
from semscale_lib.scale import resize_images
from semscale_lib.studies.claims import write_claims
from semscale_lib.studies.notebook import prepare_out_dir, require_versions, save_and_show
from semscale_lib.studies.parameters import check_parameters

versions = require_versions({"semscale_lib": "0.1", "numpy": "1.24", "pandas": "2.0", "torch": "2.1",
                             "matplotlib": "3.7"})

# %% tags=["parameters"]
dataset: str = "fashion-mnist"  # fashion-mnist, mnist, double-mnist, digits, cifar10, cifar100, imagefolder
image_root: Optional[str] = None  # dataset imagefolder: the root/<class>/<image> tree of your own images
image_size: int = 32  # dataset imagefolder: the side (pixels) the images are loaded at
imbalance_factor: Optional[float] = None  # e.g. 100 for the long-tailed (exponential) training set; None: all of it
split_seed: int = 0  # which long-tailed draw
volume_size: int = 16  # Algorithm 1 resizes to volume_size × volume_size (× channels)
alpha: float = 1.0  # α in W: 1 on balanced data, 2 on long-tailed data (the paper's)
out_dir: str = "outputs/00_quickstart"  # this notebook's tables and figures

# %% [markdown]
# ## The data
# The training images as uint8 arrays (N, H, W, C). With `imbalance_factor` set, the long-tailed subset drawn
# with `split_seed` (class 0 keeps all its images, the last class 1/IF of them).

# %% tags=["nbval-check-output"]
check_parameters(globals())
out = prepare_out_dir(out_dir)
data = load_dataset(dataset, train=True, **({"root": image_root, "image_size": image_size}
                                            if dataset == "imagefolder" else {}))
if imbalance_factor is not None:
    data, _ = long_tailed_subset(data, imbalance_factor=imbalance_factor, seed=split_seed)
print(f"{dataset}: {len(data)} training images of shape {data.images.shape[1:]}, {data.num_classes} classes")
print("images per class:", data.counts.tolist())

# %% [markdown]
# ## Sample volume and imbalance scale per class
# `semantic_scale` is S′ in bits (d = 256 for grey 16×16 images), `normalized_scale` S′/max S′,
# `normalized_distance` W′, `interclass` W = log₂(α + W′) and `imbalance_scale` S. Sorted by S, largest first.

# %% tags=["nbval-check-output"]
started = time.perf_counter()
vectors = resize_images(data.images, volume_size)
table = quantify_imbalance(vectors, data.labels, alpha=alpha, class_names=data.classes)
seconds = time.perf_counter() - started
table.to_csv(out / "semantic_scales.csv", index=False)
table.sort_values("imbalance_scale", ascending=False).round(3).reset_index(drop=True)

# %% tags=["nbval-ignore-output"]
print(f"measured {len(data)} images of dimension {vectors.shape[1]} in {seconds:.1f} s")

# %% [markdown]
# The dataset-level summary below is **ours**: the paper defines no single index of semantic scale imbalance.
# On a sample-balanced dataset the count ratio is 1 while S′ and S still differ across classes, which is the
# paper's point: equal counts do not mean equal scales.

# %% tags=["nbval-check-output"]
summary = imbalance_summary(table)
summary.to_csv(out / "imbalance_summary.csv", index=False)
summary.round(3)

# %%
wide = len(table) > 20        # many classes (CIFAR-100): one panel per row, names rotated to fit
fig, axes = plt.subplots(2 if wide else 1, 1 if wide else 2,
                         figsize=(max(12, 0.16 * len(table)), 9 if wide else 4.2))
plotting.plot_class_scales(table, "semantic_scale", ax=axes[0], title=f"sample volume S′ per class ({dataset})")
plotting.plot_class_scales(table, "imbalance_scale", ax=axes[1], title=f"imbalance scale S (α = {alpha:g})")
save_and_show(fig, out / "semantic_scales.png")

# %% tags=["nbval-check-output"]
largest, smallest = table.loc[table["semantic_scale"].idxmax()], table.loc[table["semantic_scale"].idxmin()]
print(f"Largest sample volume: {largest['name']} (S′ = {largest['semantic_scale']:.1f} bits); smallest: "
      f"{smallest['name']} (S′ = {smallest['semantic_scale']:.1f} bits), a ratio of "
      f"{largest['semantic_scale'] / smallest['semantic_scale']:.2f} with "
      f"{'equal' if data.counts.min() == data.counts.max() else 'unequal'} counts per class.")
claims_file = write_claims(
    out, "00_quickstart", [], figures=["semantic_scales.png"],
    parameters={"dataset": dataset, "imbalance_factor": imbalance_factor, "volume_size": volume_size, "alpha": alpha},
    tables=[{"title": "Sample volume and imbalance scale per class", "file": "semantic_scales.csv"}])
