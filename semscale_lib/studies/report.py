"""The report (notebook 05 and the batch runner): every notebook's claims and tables of one run folder, beside
the paper's reference numbers, as one markdown page."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from ..verdicts import format_ci
from .claims import (
    BEYOND_TITLE, holm_by_dataset, in_scope, read_claims, read_outputs, verdict_counts, verdict_table,
)
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


def _what_ran(root: Path) -> list[str]:
    summary_path = root / "summary.json"
    if not summary_path.exists():
        return []
    summary = json.loads(summary_path.read_text())
    lines = ["## What ran", "", f"Profile `{summary.get('profile')}`"
             + (f", grid `{summary.get('grid')}`" if summary.get("grid") else "") + ".", ""]
    ran = pd.DataFrame([{"notebook": e.get("notebook"), "point": e.get("point") or "", "status": e.get("status"),
                         "seconds": float(e.get("duration_s") or 0), "error": e.get("error") or ""}
                        for e in summary.get("entries", [])])
    return lines + ([markdown_table(ran, decimals=0), ""] if len(ran) else [])


def _ci_text(row) -> str:
    if row["ci_low"] is None or not np.isfinite(row["ci_low"]):
        return "no CI"
    return f"{row['estimate']:+.3f} {format_ci(row['ci_low'], row['ci_high'], 3)}"


def _numbers(row) -> dict:
    return row["numbers"] if isinstance(row["numbers"], dict) else {}


def _number(row, key: str) -> float:
    value = _numbers(row).get(key)
    return np.nan if value is None else float(value)


def _fit_text(row) -> str:
    numbers = _numbers(row)
    values = [numbers.get(k) for k in ("train_top1", "val_top1")]
    if not any(v is not None and np.isfinite(v) for v in values):
        return "—"
    return " / ".join("—" if v is None or not np.isfinite(v) else f"{100 * v:.1f}" for v in values)


def _paper_figure(row, beyond: bool):
    if beyond:
        return "—"      # not the paper's claim: no figure of the paper to set beside ours
    value = row["paper_value"]
    # formatted here: a column mixing "—" with floats is not a float column, so markdown_table would not round it
    return "—" if value is None or (isinstance(value, float) and not np.isfinite(value)) else f"{float(value):.3f}"


def claim_sections(claims: pd.DataFrame, scope: str | None = "paper") -> list[str]:
    """Markdown per claim in ``scope`` ("paper" by default, "beyond" for ours, None for all): a headline with its
    verdict on every dataset, then per dataset the estimate and CI beside the paper's figure ("—" for a "beyond"
    claim, which is not the paper's), the sentence, the rule and the evidence rows."""
    claims = in_scope(claims, scope)
    holm = holm_by_dataset(claims)
    lines = []
    for claim_id in dict.fromkeys(claims["claim_id"]):
        part = claims[claims["claim_id"] == claim_id]
        first = part.iloc[0]
        beyond = (first.get("scope") or "paper") == "beyond"
        verdicts = "; ".join(f"{r.dataset}: **{r.verdict}**" for r in part.itertuples())
        lines += [f"### {first['claim']} ({first['section']})", "", f"Verdict — {verdicts}.", ""]
        if beyond:
            said = str(first["paper"] or "").strip()
            lines += ["Our question, not a claim of the paper."
                      + (f" What the paper says on it: {said}." if said and said != "—" else ""), ""]
        else:
            lines += [f"The paper: {first['paper']}.", ""]
        rows = pd.DataFrame([{"dataset": r["dataset"], "verdict": r["verdict"], "ours: estimate [CI]": _ci_text(r),
                              "the paper's figure": _paper_figure(r, beyond),
                              "detectable (80 % power)": _number(r, "detectable_effect"),
                              "Holm p (dataset)": holm[i], "train / val top-1 (%)": _fit_text(r),
                              "setting": r["data"]}
                             for i, r in part.iterrows()])
        lines += [markdown_table(rows), ""]
        for _, row in part.iterrows():
            lines += [f"- *{row['dataset']}*: {row['measured']}"]
            if row["evidence"]:
                lines += ["", "  Evidence (sensitivity, not separate claims):", "",
                          *("  " + line for line in markdown_table(pd.DataFrame(row["evidence"])).splitlines())]
        lines += ["", *(f"Rule: {rule}" for rule in dict.fromkeys(part["rule"])), ""]
    return lines


def headline(claims: pd.DataFrame) -> list[str]:
    """The report's first screen (markdown lines): the verdict counts and the claims × datasets table of the paper's
    claims (each verdict with its Holm p within its dataset), then the same for our own questions, apart."""
    paper, beyond = in_scope(claims, "paper"), in_scope(claims, "beyond")
    lines = ["## Verdicts on the paper's claims", ""]
    if len(paper):
        lines += [verdict_counts(paper, "paper") + ". In brackets: the Holm-adjusted p-value among the claims "
                  "checked on the same dataset (the family-wise view; < 0.05 survives counting them all).", "",
                  markdown_table(verdict_table(paper, "paper")), ""]
    else:
        lines += ["No claim of the paper was checked in this run folder.", ""]
    if len(beyond):
        lines += [f"## {BEYOND_TITLE}", "",
                  "Questions we asked that the paper does not: never counted with the paper's claims.", "",
                  verdict_counts(beyond, "beyond") + ".", "", markdown_table(verdict_table(beyond, "beyond")), ""]
    return lines


def figure_links(run_dir, *, exclude: Iterable = (), relative_to=None) -> list[str]:
    """Markdown lines linking every figure the notebooks of a run folder listed (their ``claims.json``), per
    notebook, relative to ``relative_to`` (default the run folder): links, not copies, so a report stays small."""
    root = Path(run_dir)
    base = Path(relative_to) if relative_to is not None else root
    lines = []
    for saved in read_outputs(root, exclude=exclude):
        folder = Path(saved["folder"])
        links = [f"[{name}]({Path(os.path.relpath(folder / name, base)).as_posix()})"
                 for name in saved.get("figures", []) if (folder / name).exists()]
        if links:
            lines.append(f"- {saved.get('notebook', folder.name)}: " + ", ".join(links))
    return lines


def build_report(run_dir, *, exclude: Iterable = (), title: str = "semscale report") -> str:
    """The markdown of ``report.md`` for a run folder: what ran (``summary.json`` when the batch runner wrote
    one); one headline line per paper claim with its verdict on each dataset and a claims × datasets table; per
    claim, our estimate and CI beside the paper's figure and the evidence rows; then, in a section of their own
    with their own table and counts, the "beyond" claims (our questions, not the paper's); then the tables and
    figures the notebooks listed in their ``claims.json`` (the full PNGs, linked relative to ``run_dir``) and the
    paper's reference numbers."""
    root = Path(run_dir)
    claims = read_claims(root, exclude=exclude)
    lines = [f"# {title}", "", f"Run folder: `{root.resolve().name}`. Paper: Ma et al., *Delving into Semantic Scale "
             "Imbalance*, ICLR 2023. Every claim gets one verdict per dataset — held, contradicted, inconclusive or "
             "not testable — decided by the rule stated under it from a confidence interval; inconclusive is never a "
             "refutation. Our choices where the paper is silent: the project's docs/paper-notes.md.", ""]
    paper, beyond = in_scope(claims, "paper"), in_scope(claims, "beyond")
    lines += headline(claims)
    lines += _what_ran(root)
    if len(paper):
        lines += ["## The paper's claims in detail", "", *claim_sections(paper, "paper")]
    if len(beyond):
        lines += [f"## {BEYOND_TITLE}: in detail", "", *claim_sections(beyond, "beyond")]
    for saved in read_outputs(root, exclude=exclude):
        folder = Path(saved["folder"])
        rel = folder.relative_to(root)
        pieces = []
        for entry in saved.get("tables", []):
            if (folder / entry["file"]).exists():
                pieces += [f"**{entry['title']}** (`{rel / entry['file']}`)", "",
                           markdown_table(pd.read_csv(folder / entry["file"])), ""]
        pieces += [f"[![{name}]({(rel / name).as_posix()})]({(rel / name).as_posix()})\n"   # full PNG, linked
                   for name in saved.get("figures", []) if (folder / name).exists()]
        if pieces:
            lines += [f"## {saved.get('notebook', rel.name)} (`{rel}`)", "", *pieces]
    reference = pd.DataFrame([{"data": d, "model": m, **values} for (d, m), values in TABLE1_REFERENCE.items()])
    lines += ["## Reference numbers (the paper's)", "",
              "Table 1, Pearson r(per-class accuracy, ·); N and E_n on balanced CIFAR-10 are undefined (constant).",
              "", markdown_table(reference, decimals=4), ""]
    return "\n".join(lines + [f"- {text}" for text in PAPER_NUMBERS.values()] + [""])


__all__ = ["PAPER_NUMBERS", "build_report", "claim_sections", "figure_links", "headline"]
