"""The report (notebook 05 and the batch runner): every notebook's claims and tables of one run folder, beside
the paper's reference numbers, as one markdown page."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable

import pandas as pd

from .claims import read_claims, read_outputs, verdict_counts
from .correlation import TABLE1_REFERENCE
from .notebook import markdown_table

#: Text of the paper's other reference numbers (docs/paper-notes.md §11), for the report.
PAPER_NUMBERS = {
    "table2": "ImageNet-LT CE 44.4 (65.9/37.5/7.7) → DSB-CE 49.2 (67.3/42.5/21.4); Focal 47.2 → 50.6; "
              "LDAM 51.1 → 52.3; BS 51.2 → 52.8; iNaturalist 2018 CE 61.7 → DSB-CE 64.3; LDAM 64.6 → 65.7",
    "table3": "balanced CIFAR-100, CE → DSB-CE: ResNet-18 75.6 → 76.9; ResNet-34 76.8 → 77.9 "
              "(+0.7 to +1.5 over 8 networks); ImageNet ResNet-50 76.0 → 76.8",
    "fig18": "CIFAR-100-LT, DSB-CE only, IF 200/100/50/10: 41.2 / 45.5 / 49.4 / 60.2 (no CE baseline given)",
    "peers": "peers (not the paper), CIFAR-100-LT IF 100, ResNet-32: CE 38.32; CB-CE 38.97; LDAM-DRW 42.04; "
             "BS 42.99",
}


def build_report(run_dir, *, exclude: Iterable = (), title: str = "semscale report") -> str:
    """The markdown of ``report.md`` for a run folder: run summary (``summary.json`` when the batch runner wrote
    one), every checked claim beside what the paper reports and the verdict, the tables and figures the notebooks
    listed in their ``claims.json`` (linked relative to ``run_dir``), the paper's reference numbers and the rules
    used."""
    root = Path(run_dir)
    outputs = read_outputs(root, exclude=exclude)
    claims = read_claims(root, exclude=exclude)
    lines = [f"# {title}", "", f"Run folder: `{root.resolve().name}`. Paper: Ma et al., *Delving into Semantic Scale "
             "Imbalance*, ICLR 2023. Each verdict states the rule that decided it; thresholds the paper does not "
             "give are ours and stated with each rule (see the project's docs/paper-notes.md).", ""]
    summary_path = root / "summary.json"
    if summary_path.exists():
        summary = json.loads(summary_path.read_text())
        lines += ["## What ran", "", f"Profile `{summary.get('profile')}`"
                  + (f", grid `{summary.get('grid')}`" if summary.get("grid") else "") + ".", ""]
        ran = pd.DataFrame([{"notebook": e.get("notebook"), "point": e.get("point") or "",
                             "status": e.get("status"), "seconds": float(e.get("duration_s") or 0),
                             "error": e.get("error") or ""} for e in summary.get("entries", [])])
        if len(ran):
            lines += [markdown_table(ran, decimals=0), ""]
    lines += ["## Claims", ""]
    if len(claims):
        table = claims[["notebook", "claim", "data", "paper", "measured", "verdict"]].rename(
            columns={"paper": "the paper reports", "measured": "we measured"})
        lines += [verdict_counts(claims) + ".", "", markdown_table(table), ""]
    else:
        lines += ["No claim was checked: no `claims.json` found under the run folder.", ""]
    for saved in outputs:
        folder = Path(saved["folder"])
        rel = folder.relative_to(root)
        pieces = []
        for entry in saved.get("tables", []):
            path = folder / entry["file"]
            if path.exists():
                pieces += [f"**{entry['title']}** (`{rel / entry['file']}`)", "",
                           markdown_table(pd.read_csv(path)), ""]
        for name in saved.get("figures", []):
            if (folder / name).exists():
                pieces += [f"![{name}]({(rel / name).as_posix()})", ""]
        if pieces:
            lines += [f"## {saved.get('notebook', rel.name)} (`{rel}`)", "", *pieces]
    reference = pd.DataFrame([{"data": d, "model": m, **values} for (d, m), values in TABLE1_REFERENCE.items()])
    lines += ["## Reference numbers (the paper's)", "",
              "Table 1, Pearson r(per-class accuracy, ·); N and E_n on balanced CIFAR-10 are undefined (constant).",
              "", markdown_table(reference, decimals=4), ""]
    lines += [f"- {text}" for text in PAPER_NUMBERS.values()] + [""]
    if len(claims):
        lines += ["## Rules used", ""]
        for rule in dict.fromkeys(claims["rule"]):
            lines.append(f"- {rule}")
        lines.append("")
    return "\n".join(lines)


__all__ = ["PAPER_NUMBERS", "build_report"]
