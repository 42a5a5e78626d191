# %% [markdown]
# # 05 · Report: each claim of the paper beside what we measured
#
# Collects what notebooks 00–04 wrote into a run folder (their `claims.json`, CSV tables and figures) and writes
# `report.md` there: for each claim, what the paper reports, what we measured and on which data, and whether it
# held — decided by the falsification rules of the spec (TRANSCRIPTION §5), with our thresholds where the paper
# gives none. The batch runner (`python -m semscale_lib run`) runs this notebook last with `run_dir` set to its
# run folder; run by hand, it reads the default outputs of the other notebooks (`outputs/`).

# %%
import warnings
from pathlib import Path

warnings.filterwarnings("ignore", message="IProgress not found")  # tqdm without ipywidgets
import pandas as pd
from IPython.display import Image, Markdown, display

import semscale_lib
from semscale_lib import experiments as ex

versions = ex.require_versions({"semscale_lib": "0.1", "pandas": "2.0"})

# %% tags=["parameters"]
run_dir = "outputs"             # the run folder to report on (the batch runner passes its own)
out_dir = "outputs/05_report"   # where this notebook keeps its own files (claims.csv)

# %%
out = ex.prepare_out_dir(out_dir)
root = Path(run_dir)
outputs = ex.read_outputs(root, exclude=[out])
claims = ex.read_claims(root, exclude=[out])
claims.drop(columns=["numbers", "figures"]).to_csv(out / "claims.csv", index=False)
print(f"{len(outputs)} notebook outputs, {len(claims)} checked claims under the run folder")

# %% [markdown]
# ## The claims

# %%
# NBVAL_CHECK_OUTPUT
if len(claims):
    display(Markdown(ex.verdict_counts(claims) + "."))
    display(Markdown(ex.markdown_table(claims[["notebook", "claim", "paper", "measured", "verdict"]])))
else:
    print("No claims.json under the run folder: run notebooks 01-04 first (or the batch runner).")

# %% [markdown]
# ## The tables and figures the notebooks listed

# %%
for saved in outputs:
    folder = Path(saved["folder"])
    display(Markdown(f"### {saved.get('notebook')}"))
    for entry in saved.get("tables", []):
        if (folder / entry["file"]).exists():
            display(Markdown(f"**{entry['title']}**"))
            display(pd.read_csv(folder / entry["file"]).round(3))
    for name in saved.get("figures", []):
        if (folder / name).exists():
            display(Image(data=ex.thumbnail(folder / name), format="jpeg"))   # small copies keep this light

# %% [markdown]
# ## The paper's reference numbers (SPEC §7)

# %%
# NBVAL_CHECK_OUTPUT
reference = pd.DataFrame([{"data": d, "model": m, **values} for (d, m), values in ex.TABLE1_REFERENCE.items()])
display(Markdown("Table 1, Pearson r(per-class accuracy, ·); N and E_n on balanced CIFAR-10 are undefined."))
display(reference)
display(Markdown("\n".join(f"- {text}" for text in ex.PAPER_NUMBERS.values())))

# %% [markdown]
# ## report.md

# %%
# NBVAL_IGNORE_OUTPUT
report = ex.build_report(root, exclude=[out])
report_path = root / "report.md"
report_path.write_text(report)
print(f"report: {report_path} ({len(report.splitlines())} lines)")
