"""Claim records: what each notebook checked, written to ``<out_dir>/claims.json`` and read back by the report.

A record states the claim, where the paper makes it (its own numbering, e.g. "Sec. 3.3"), what the paper
reports, what we measured and on which data, the verdict and the rule that decided it.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import pandas as pd

from .notebook import write_json

CLAIMS_FILE = "claims.json"


VERDICTS = ("held", "not held", "not testable")


def claim_record(*, claim: str, section: str, paper: str, measured: str, data: str, verdict: str, rule: str,
                 numbers: Mapping | None = None, figures: Sequence[str] = ()) -> dict:
    """One checked claim: ``section`` is where the paper makes it (e.g. "Sec. 3.3"); ``verdict`` is one of
    :data:`VERDICTS`; ``rule`` states the rule that decided it, with its thresholds."""
    if verdict not in VERDICTS:
        raise ValueError(f"verdict must be one of {VERDICTS}, got {verdict!r}")
    return {"claim": claim, "section": section, "paper": paper, "measured": measured, "data": data, "verdict": verdict,
            "rule": rule, "numbers": dict(numbers or {}), "figures": list(figures)}


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

    Columns: notebook, folder (relative to ``run_dir``), then the record's fields. Folders in ``exclude`` are
    skipped (05_report excludes its own).
    """
    root = Path(run_dir)
    rows = []
    for saved in read_outputs(root, exclude=exclude):
        for record in saved.get("claims", []):
            rows.append({"notebook": saved.get("notebook", ""),
                         "folder": str(Path(saved["folder"]).relative_to(root)), **record})
    columns = ["notebook", "folder", "claim", "section", "paper", "measured", "data", "verdict", "rule", "numbers",
               "figures"]
    return pd.DataFrame(rows, columns=columns)


def verdict_counts(claims: pd.DataFrame) -> str:
    """"k of n claims held (…)" for a :func:`read_claims` frame."""
    counts = claims["verdict"].value_counts()
    parts = [f"{int(counts.get(v, 0))} {v}" for v in VERDICTS if counts.get(v, 0)]
    return f"{int(counts.get('held', 0))} of {len(claims)} checks held" + (f" ({', '.join(parts)})" if parts else "")


__all__ = ["CLAIMS_FILE", "VERDICTS", "claim_record", "read_claims", "read_outputs", "verdict_counts", "write_claims"]
