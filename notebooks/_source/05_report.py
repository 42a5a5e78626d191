# %% [markdown]
# # 05 · Report: each claim of the paper beside what we measured
#
# Collects what the other notebooks (00–04 and 06) wrote into a run folder — their `claims.json`, CSV tables and
# figures — and writes `report.md` there: one verdict per paper claim and dataset (held, contradicted,
# inconclusive or not testable, decided in `semscale_lib.verdicts` from a confidence interval by the rule each claim
# states), with our estimate and CI beside the paper's figure, the smallest effect each design could detect, and a
# family-wise view (Holm, per dataset). Questions of our own that the paper does not ask (notebook 06) get a table
# of their own and are never counted with the paper's claims. The batch runner (`python -m semscale_lib run`)
# runs this notebook last with `run_dir` set to its run folder; run by hand, it reads the other notebooks' default
# outputs (`outputs/`).

# %%
from pathlib import Path
from typing import Optional

import pandas as pd
from IPython.display import Markdown, display

from semscale_lib.studies.claims import in_scope, read_claims, read_outputs
from semscale_lib.studies.correlation import TABLE1_REFERENCE
from semscale_lib.studies.interpret import meaning
from semscale_lib.studies.notebook import markdown_table, prepare_out_dir, require_versions
from semscale_lib.studies.parameters import check_parameters
from semscale_lib.studies.report import PAPER_NUMBERS, build_report, claim_sections, figure_links, headline
from semscale_lib.studies.tolerance import CheckedBlock

versions = require_versions({"semscale_lib": "0.1", "pandas": "2.0"})

# %% tags=["parameters"]
run_dir: str = "outputs"  # the run folder to report on (the batch runner passes its own)
out_dir: str = "outputs/05_report"  # where this notebook keeps its own files (claims.csv)
links_from: Optional[str] = None  # the folder figure links start from (the runner: the report's folder); None: here

# %%
check_parameters(globals())
out = prepare_out_dir(out_dir)
root = Path(run_dir)
outputs = read_outputs(root, exclude=[out])
claims = read_claims(root, exclude=[out])
claims.drop(columns=["numbers", "figures", "evidence"]).to_csv(out / "claims.csv", index=False)
print(f"{len(outputs)} notebook outputs under the run folder: {len(in_scope(claims, 'paper'))} verdicts on the "
      f"paper's claims, {len(in_scope(claims, 'beyond'))} on our own questions")

# %% [markdown]
# ## Headline: every verdict at a glance

# %% tags=["nbval-ignore-output"]
display(Markdown("\n".join(headline(claims))))

# %% [markdown]
# ## What the verdicts mean

# %% tags=["nbval-ignore-output"]
display(Markdown(meaning(in_scope(claims, "paper").to_dict("records"))))

# %% [markdown]
# ## Each claim in detail: estimate and CI beside the paper's figure, power, the rule, the evidence

# %% tags=["nbval-ignore-output"]
display(Markdown("\n".join(claim_sections(claims, "paper") + claim_sections(claims, "beyond"))))

# %% [markdown]
# ## The figures (links to the notebooks' own files, not copies)

# %% tags=["nbval-ignore-output"]
display(Markdown("\n".join(figure_links(root, exclude=[out], relative_to=links_from or Path.cwd()))))

# %% [markdown]
# ## The paper's reference numbers (Tables 1–3, Fig. 18)

# %% tags=["nbval-check-output"]
reference = pd.DataFrame([{"data": d, "model": m, **values} for (d, m), values in TABLE1_REFERENCE.items()])
display(Markdown("Table 1, Pearson r(per-class accuracy, ·); N and E_n on balanced CIFAR-10 are undefined."))
display(Markdown(markdown_table(reference, decimals=4)))
display(Markdown("\n".join(f"- {text}" for text in PAPER_NUMBERS.values())))

# %% [markdown]
# ## report.md

# %% tags=["nbval-ignore-output"]
report = build_report(root, exclude=[out])
report_path = root / "report.md"
report_path.write_text(report)
print(f"report: {report_path} ({len(report.splitlines())} lines)")

# %% [markdown]
# ## Checked across machines
# Every verdict and its numbers, each with the tolerance within which another CPU reproduces them; a verdict
# marked "on the edge" may read otherwise there (`semscale_lib.studies.tolerance`).

# %% tags=["nbval-check-output", "semscale-tolerance"]
CheckedBlock().claims(claims.to_dict("records"))
