"""Claim records: what each notebook checked, written to ``<out_dir>/claims.json`` and read back by the report.

A record states the claim, where the paper makes it (its own numbering, e.g. "Sec. 3.3"), what the paper
reports, what we measured and on which data, the verdict and the rule that decided it.

Every record has a ``scope``: "paper" (a claim the paper makes; the default, and what a claims.json written
before scopes existed reads as) or "beyond" (our own question, not the paper's). The report keeps the two apart:
the verdict table, the counts and the per-claim sections of the paper's claims never include a "beyond" record.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from ..verdicts import VERDICTS, VerdictRecord, holm_adjust, summarize
from .notebook import write_json
from .tolerance import claim_tolerance_fields

CLAIMS_FILE = "claims.json"
COLUMNS = ["notebook", "folder", "scope", "claim_id", "claim", "section", "dataset", "data", "paper", "paper_value",
           "measured", "verdict", "estimate", "ci_low", "ci_high", "rule", "evidence", "numbers", "figures",
           "tolerance", "edge", "checked"]
#: "paper": a claim the paper makes; "beyond": our own question, not the paper's claim.
SCOPES = ("paper", "beyond")
#: The report's heading of the "beyond" claims.
BEYOND_TITLE = "Beyond the paper (our questions, not the paper's claims)"


def claim_record(*, claim_id: str, claim: str, section: str, paper: str, dataset: str, data: str,
                 record: VerdictRecord, paper_value: float | None = None, evidence: Sequence[Mapping] = (),
                 numbers: Mapping | None = None, figures: Sequence[str] = (), scope: str = "paper") -> dict:
    """One paper claim checked on one dataset. The verdict, estimate, CI, rule and sentence come from ``record``
    (a :mod:`semscale_lib.verdicts` record), never from the caller.

    ``claim_id``: a stable key shared by every dataset's record of the same claim (the report's rows);
    ``section``: where the paper makes it ("Sec. 3.3"); ``paper``: what the paper reports, ``paper_value`` the
    figure to set beside our CI (same units as ``record.estimate``; None when the paper gives none);
    ``dataset``: the report's column; ``data``: the setting in words; ``evidence``: rows shown under the verdict
    (sensitivity analyses, other sources), each a flat mapping; ``scope``: "paper" (the paper makes this claim)
    or "beyond" (our own question: ``section`` then names what it relates to, ``paper`` what the paper says
    about it if anything; the report shows no paper figure for it, so ``paper_value`` is best left None).

    The record also carries ``tolerance`` (of its estimate and CI bounds across machines) and ``edge`` (why its
    verdict may read otherwise on another CPU, or None): :mod:`semscale_lib.studies.tolerance`; and ``checked``
    (True: its numbers go into the notebook's checked block; False where the claim exists only because of a choice
    made from trained numbers, e.g. :func:`~semscale_lib.studies.tracking.chosen_arm_unchecked`)."""
    if not isinstance(record, VerdictRecord):
        raise TypeError(f"record must be a semscale_lib.verdicts record, got {type(record).__name__}")
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {SCOPES}, got {scope!r}")
    return {"scope": scope, "claim_id": claim_id, "claim": claim, "section": section, "dataset": dataset, "data": data,
            "paper": paper, "paper_value": paper_value, "measured": record.sentence, "verdict": record.verdict,
            "estimate": record.estimate, "ci_low": record.ci_low, "ci_high": record.ci_high, "rule": record.rule,
            "evidence": [dict(e) for e in evidence], "numbers": {**record.to_dict(), **dict(numbers or {})},
            "figures": list(figures), **claim_tolerance_fields(record), "checked": True}


def claims_table(claims: Sequence[Mapping]) -> pd.DataFrame:
    """One row per claim record for display: claim, data set, verdict, our estimate with its 95 % CI, the paper's
    figure, the smallest effect the design detects with 80 % power (all in the estimate's units: points for gains,
    r for correlations) and why it is not testable or on the edge, where it is."""
    rows = []
    for claim in claims:
        numbers = claim.get("numbers") or {}
        low, high = claim.get("ci_low"), claim.get("ci_high")
        finite = all(v is not None and np.isfinite(v) for v in (low, high))
        wide = finite and numbers.get("kind") in ("paired", "negligible gain") and max(abs(low), abs(high)) > 100
        rows.append({"claim": claim["claim"], "data": claim["dataset"], "verdict": claim["verdict"],
                     "estimate": claim.get("estimate"),
                     "95 % CI": "no power (wider than ±100 points)" if wide else
                     f"[{low:+.2f}, {high:+.2f}]" if finite else "none",
                     "paper": claim.get("paper_value"), "detectable (80 % power)": numbers.get("detectable_effect"),
                     "note": numbers.get("reason") or (f"on the edge: {claim['edge']}" if claim.get("edge") else "")})
    return pd.DataFrame(rows)


def write_claims(out_dir, notebook: str, claims: Sequence[dict], *, parameters: Mapping | None = None,
                 figures: Sequence[str] = (), tables: Sequence[Mapping] = ()) -> Path:
    """Write ``<out_dir>/claims.json``: the notebook's name, its parameters, its claim records, and the figures
    (PNG file names in ``out_dir``) and tables (``{"title", "file"}``, CSV files in ``out_dir``) that
    ``05_report`` should show."""
    for table in tables:
        if set(table) != {"title", "file"}:
            raise ValueError(f"a table entry needs exactly 'title' and 'file', got {sorted(table)}")
    return write_json(Path(out_dir) / CLAIMS_FILE,
                      {"notebook": notebook, "parameters": dict(parameters or {}), "claims": list(claims),
                       "figures": list(figures), "tables": [dict(t) for t in tables]})


def read_outputs(run_dir, *, exclude: Iterable = ()) -> list[dict]:
    """Every ``claims.json`` under ``run_dir`` (sorted by path), each with ``folder`` (absolute) added."""
    root = Path(run_dir)
    excluded = {Path(e).resolve() for e in exclude}
    found = []
    for path in sorted(root.rglob(CLAIMS_FILE)):
        if path.parent.resolve() in excluded:
            continue
        saved = json.loads(path.read_text())
        saved["folder"] = str(path.parent)
        found.append(saved)
    return found


def read_claims(run_dir, *, exclude: Iterable = ()) -> pd.DataFrame:
    """All claim records under ``run_dir`` (``**/claims.json``), one row each, in path order.

    Columns: notebook, folder (relative to ``run_dir``), then the record's fields. A record without ``scope``
    (written before scopes existed) reads as "paper". Folders in ``exclude`` are skipped (05_report excludes its
    own).
    """
    root = Path(run_dir)
    rows = []
    for saved in read_outputs(root, exclude=exclude):
        for record in saved.get("claims", []):
            rows.append({"notebook": saved.get("notebook", ""),
                         "folder": str(Path(saved["folder"]).relative_to(root)), **record,
                         "scope": record.get("scope") or "paper"})
    return pd.DataFrame(rows, columns=COLUMNS)


def in_scope(claims: pd.DataFrame, scope: str | None = "paper") -> pd.DataFrame:
    """The rows of ``claims`` in ``scope`` ("paper" or "beyond"; None: all). Rows without a scope (a frame
    without the column, or an empty cell) are the paper's."""
    if scope is None:
        return claims
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {SCOPES} or None, got {scope!r}")
    scopes = claims["scope"].fillna("paper") if "scope" in claims else pd.Series("paper", index=claims.index)
    return claims[scopes == scope]


def verdict_counts(claims: pd.DataFrame, scope: str | None = "paper") -> str:
    """"m verdicts on n claims across k datasets: a held, b contradicted, …" for the claims in ``scope`` of a
    :func:`read_claims` frame (one row per claim and dataset; not every claim need be checked on every dataset). By
    default the paper's claims only: "beyond" claims are counted with ``scope="beyond"``, never with the paper's."""
    claims = in_scope(claims, scope)
    counts = summarize(claims["verdict"])
    parts = [f"{counts[v]} {v}" for v in VERDICTS if counts[v]]

    def count(n: int, noun: str) -> str:
        return f"{n} {noun}" + ("" if n == 1 else "s")
    return (f"{count(len(claims), 'verdict')} on {count(claims['claim_id'].nunique(), 'claim')} across "
            f"{count(claims['dataset'].nunique(), 'dataset')}: " + (", ".join(parts) if parts else "none"))


def holm_by_dataset(claims: pd.DataFrame) -> pd.Series:
    """Holm-adjusted p-values (Holm 1979) of the claims of a :func:`read_claims` frame, each dataset's claims one
    family (the family-wise view beside the per-claim verdicts): a claim whose adjusted p lies below 0.05 still
    holds when every claim checked on that dataset is counted. NaN where a claim has no p-value or is not testable
    (a claim that could not be tested is not one of the family's tests)."""
    p = pd.Series([(n if isinstance(n, dict) else {}).get("p_value") if v != "not testable" else None
                   for n, v in zip(claims["numbers"], claims["verdict"])], index=claims.index, dtype=float)
    adjusted = pd.Series(np.nan, index=claims.index)
    for _, part in claims.groupby("dataset", sort=False):
        adjusted.loc[part.index] = holm_adjust(p.loc[part.index].to_numpy())
    return adjusted


def verdict_table(claims: pd.DataFrame, scope: str | None = "paper") -> pd.DataFrame:
    """Claims × datasets for the claims in ``scope`` (default the paper's; "beyond": ours): one row per claim (in
    first-seen order) with its section and one column per dataset holding the verdict and, in brackets, its Holm
    p-value within that dataset's claims (:func:`holm_by_dataset`; ``—`` where the claim was not checked)."""
    claims = in_scope(claims, scope)
    holm = holm_by_dataset(claims)
    order = list(dict.fromkeys(claims["claim_id"]))
    datasets = list(dict.fromkeys(claims["dataset"]))
    rows = []
    for claim_id in order:
        part = claims[claims["claim_id"] == claim_id]
        row = {"claim": part["claim"].iloc[0], "section": part["section"].iloc[0]}
        for d in datasets:
            cells = [f"{v} (Holm p {holm[i]:.2g})" if np.isfinite(holm[i]) else v
                     for i, v in part[part["dataset"] == d]["verdict"].items()]
            row[d] = ", ".join(cells) or "—"
        rows.append(row)
    return pd.DataFrame(rows, columns=["claim", "section", *datasets])


__all__ = ["BEYOND_TITLE", "CLAIMS_FILE", "SCOPES", "VERDICTS", "claim_record", "claims_table", "holm_by_dataset",
           "in_scope", "read_claims", "read_outputs", "verdict_counts", "verdict_table", "write_claims"]
