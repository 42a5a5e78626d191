# %% [markdown]
# # 05 · Report: each claim of the paper beside what we measured
#
# Collects what notebooks 00–04 wrote into a run folder (their `claims.json`, CSV tables and figures) and writes
# `report.md` there: one verdict per paper claim and dataset — held, contradicted, inconclusive or not testable,
# decided in `semscale_lib.verdicts` from a confidence interval by the rule each claim states — with our estimate
# and CI beside the paper's figure and the evidence rows (sensitivity analyses) below it. Questions of our own
# that the paper does not ask ("beyond" claims) get a section of their own and are never counted with the
# paper's claims. The batch runner (`python -m semscale_lib run`) runs this notebook last with `run_dir` set to
# its run folder; run by hand, it reads the default outputs of the other notebooks (`outputs/`).

# %%
import warnings
from pathlib import Path

warnings.filterwarnings("ignore", message="IProgress not found")  # tqdm without ipywidgets
import pandas as pd
from IPython.display import Markdown, display

import semscale_lib
from semscale_lib.studies.claims import in_scope, read_claims, read_outputs, verdict_counts, verdict_table
from semscale_lib.studies.correlation import TABLE1_REFERENCE
from semscale_lib.studies.notebook import markdown_table, prepare_out_dir, require_versions, show_figure
from semscale_lib.studies.report import PAPER_NUMBERS, build_report, claim_sections

versions = require_versions({"semscale_lib": "0.1", "pandas": "2.0"})

# %% tags=["parameters"]
run_dir = "outputs"             # the run folder to report on (the batch runner passes its own)
out_dir = "outputs/05_report"   # where this notebook keeps its own files (claims.csv)

# %%
out = prepare_out_dir(out_dir)
root = Path(run_dir)
outputs = read_outputs(root, exclude=[out])
claims = read_claims(root, exclude=[out])
claims.drop(columns=["numbers", "figures", "evidence"]).to_csv(out / "claims.csv", index=False)
paper_claims, beyond_claims = in_scope(claims, "paper"), in_scope(claims, "beyond")
print(f"{len(outputs)} notebook outputs under the run folder: {len(paper_claims)} verdicts on the paper's claims, "
      f"{len(beyond_claims)} on our own questions")

# %% [markdown]
# ## Verdicts on the paper's claims: claims × datasets

# %% tags=["nbval-check-output"]
if len(paper_claims):
    display(Markdown(verdict_counts(paper_claims, "paper") + "."))
    display(Markdown(markdown_table(verdict_table(paper_claims, "paper"))))
else:
    print("No claim of the paper in the run folder: run notebooks 01-04 first (or the batch runner).")

# %% [markdown]
# ## Each claim: our estimate and CI beside the paper's figure, the rule, the evidence

# %% tags=["nbval-check-output"]
if len(paper_claims):
    display(Markdown("\n".join(claim_sections(paper_claims, "paper"))))

# %% [markdown]
# ## Beyond the paper (our questions, not the paper's claims)
# Questions we ask that the paper does not: their own table and counts, never added to the paper's above, and no
# paper figure beside our estimate.

# %% tags=["nbval-check-output"]
if len(beyond_claims):
    display(Markdown("\n".join([verdict_counts(beyond_claims, "beyond") + ".", "",
                                 markdown_table(verdict_table(beyond_claims, "beyond")), "",
                                 *claim_sections(beyond_claims, "beyond")])))
else:
    print("No question beyond the paper in this run folder.")

# %% [markdown]
# ## The tables and figures the notebooks listed
# Each figure once, at full resolution and the notebook's full width (`report.md` links the same PNG files).

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
            display(Markdown(f"`{(folder / name).relative_to(root)}`"))
            display(show_figure(folder / name))

# %% [markdown]
# ## The paper's reference numbers (Tables 1–3, Fig. 18)

# %% tags=["nbval-check-output"]
reference = pd.DataFrame([{"data": d, "model": m, **values} for (d, m), values in TABLE1_REFERENCE.items()])
display(Markdown("Table 1, Pearson r(per-class accuracy, ·); N and E_n on balanced CIFAR-10 are undefined."))
display(reference)
display(Markdown("\n".join(f"- {text}" for text in PAPER_NUMBERS.values())))

# %% [markdown]
# ## report.md

# %% tags=["nbval-ignore-output"]
report = build_report(root, exclude=[out])
report_path = root / "report.md"
report_path.write_text(report)
print(f"report: {report_path} ({len(report.splitlines())} lines)")
