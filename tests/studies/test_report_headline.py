"""Tests of the report's first screen and its family-wise view (semscale_lib.studies.claims and .report): Holm
within each dataset, the claims × datasets table with Holm p, the display table of claim records, the headline,
the per-claim detail columns and the figure links."""
from __future__ import annotations

import json
import math
import re

import numpy as np
import pandas as pd
import pytest

from semscale_lib.studies import claims as cl
from semscale_lib.studies import report as rp
from semscale_lib.verdicts import correlation_verdict, paired_verdict, withheld


def _squeeze(text: str) -> str:
    return re.sub(r" +", " ", text)


def _frame(rows):
    """A read_claims-like frame from (claim_id, dataset, verdict, p-value or None[, scope]) rows."""
    return pd.DataFrame([{"claim_id": r[0], "claim": f"claim {r[0]}", "section": "Sec. 4", "dataset": r[1],
                          "verdict": r[2], "numbers": {} if r[3] is None else {"p_value": r[3]},
                          "scope": r[4] if len(r) > 4 else "paper"} for r in rows])


# --------------------------------------------------------------------------------------------- Holm by dataset
def test_holm_by_dataset_by_hand():
    claims = _frame([("a", "mnist", "held", 0.01), ("b", "mnist", "inconclusive", 0.04),
                     ("c", "mnist", "held", 0.03), ("a", "fashion", "inconclusive", 0.2),
                     ("b", "fashion", "not testable", None), ("a", "double", "held", 0.5),
                     ("b", "double", "held", 0.6)])
    holm = cl.holm_by_dataset(claims)
    # mnist, m = 3, sorted 0.01, 0.03, 0.04: 3·0.01 = 0.03, 2·0.03 = 0.06, max(0.06, 1·0.04) = 0.06
    assert holm.iloc[:3].tolist() == pytest.approx([0.03, 0.06, 0.06])
    # fashion: the claim without a p-value is not counted (m = 1) and stays NaN
    assert holm.iloc[3] == pytest.approx(0.2) and math.isnan(holm.iloc[4])
    # double: 2·0.5 = 1.0, max(1.0, 0.6) = 1.0 (capped at 1)
    assert holm.iloc[5:].tolist() == pytest.approx([1.0, 1.0])
    assert holm.index.equals(claims.index)


def test_holm_families_are_datasets_not_the_whole_run():
    # one claim per dataset: each alone in its family, so its Holm p is its own p
    claims = _frame([("a", "mnist", "held", 0.01), ("a", "fashion", "held", 0.02)])
    assert cl.holm_by_dataset(claims).tolist() == pytest.approx([0.01, 0.02])


def test_verdict_table_cells_carry_the_holm_p_or_the_bare_verdict():
    claims = _frame([("a", "mnist", "held", 0.01), ("b", "mnist", "inconclusive", 0.04),
                     ("c", "mnist", "held", 0.03), ("a", "fashion", "not testable", None)])
    table = cl.verdict_table(claims)
    assert list(table.columns) == ["claim", "section", "mnist", "fashion"]
    assert table.values.tolist() == [
        ["claim a", "Sec. 4", "held (Holm p 0.03)", "not testable"],
        ["claim b", "Sec. 4", "inconclusive (Holm p 0.06)", "—"],
        ["claim c", "Sec. 4", "held (Holm p 0.06)", "—"]]


# ---------------------------------------------------------------------------------------------- claims_table
BASE = [70.0, 71.0, 72.0]


def _claim(record, claim_id="x", **extra):
    return cl.claim_record(claim_id=claim_id, claim=f"claim {claim_id}", section="Sec. 4", paper="p",
                           dataset="mnist", data="toy", record=record, **extra)


def test_claims_table_columns_ci_and_power():
    held = paired_verdict(BASE, [72.0, 73.1, 73.9])            # gains 2.0, 2.1, 1.9
    table = cl.claims_table([_claim(held, paper_value=4.8)])
    assert list(table.columns) == ["claim", "data", "verdict", "estimate", "95 % CI", "paper",
                                   "detectable (80 % power)", "note"]
    row = table.iloc[0]
    assert (row["claim"], row["data"], row["verdict"]) == ("claim x", "mnist", "held")
    assert row["estimate"] == pytest.approx(2.0) and row["paper"] == 4.8
    # mean 2, sd 0.1 over 3 seeds: CI 2 ± t(0.975, 2)·0.1/√3 = 2 ± 0.248
    assert row["95 % CI"] == "[+1.75, +2.25]"
    assert row["detectable (80 % power)"] == pytest.approx(held.detectable_effect)
    assert row["note"] == ""


def test_claims_table_says_no_power_for_a_ci_wider_than_100_points():
    # gains +40, −40, +30: mean 10, sd 43.6, half-width 4.303·43.6/√3 = 108: the CI [−98.3, +118.3] leaves ±100
    wide = paired_verdict([50.0, 50.0, 50.0], [90.0, 10.0, 80.0])
    assert wide.ci_high > 100
    assert cl.claims_table([_claim(wide)]).iloc[0]["95 % CI"] == "no power (wider than ±100 points)"
    # a correlation's CI is never read as points
    r = correlation_verdict(np.arange(10.0), np.arange(10.0) ** 2)
    assert cl.claims_table([_claim(r)]).iloc[0]["95 % CI"] == f"[{r.ci_low:+.2f}, {r.ci_high:+.2f}]"


def test_claims_table_notes_the_reason_or_the_edge():
    single = paired_verdict([70.0], [72.0])                    # one seed: not testable, no CI
    row = cl.claims_table([_claim(single)]).iloc[0]
    assert row["verdict"] == "not testable" and row["95 % CI"] == "none" and row["note"] == single.reason
    far = withheld(paired_verdict(BASE, [72.0, 73.1, 73.9]), "models not trained to a plateau")
    assert cl.claims_table([_claim(far)]).iloc[0]["note"] == "models not trained to a plateau"
    near = _claim(paired_verdict([50.0, 51.0, 52.0], [50.5, 52.0, 52.4]))   # gains 0.5, 1.0, 0.4: CI near 0
    assert near["edge"]
    assert cl.claims_table([near]).iloc[0]["note"] == f"on the edge: {near['edge']}"


# -------------------------------------------------------------------------------------------------- headline
def test_headline_paper_first_then_beyond():
    claims = _frame([("a", "mnist", "held", 0.01), ("b", "mnist", "inconclusive", 0.04),
                     ("q", "mnist", "contradicted", 0.02, "beyond")])
    text = "\n".join(rp.headline(claims))
    squeezed = _squeeze(text)
    beyond_at = text.index(f"## {cl.BEYOND_TITLE}")
    assert text.startswith("## Verdicts on the paper's claims")
    paper = text[:beyond_at]
    # the paper's family: 0.01, 0.04 → 0.02, 0.04; the beyond claim is counted apart
    assert "2 verdicts on 2 claims across 1 dataset: 1 held, 1 inconclusive. In brackets: the Holm-adjusted" in paper
    assert "| claim a | Sec. 4 | held (Holm p 0.02) |" in squeezed and "claim q" not in paper
    beyond = text[beyond_at:]
    assert "1 verdict on 1 claim across 1 dataset: 1 contradicted." in beyond
    assert "| claim q | Sec. 4 | contradicted (Holm p 0.02) |" in _squeeze(beyond)


def test_headline_without_claims_of_the_paper():
    text = "\n".join(rp.headline(_frame([("q", "mnist", "held", 0.01, "beyond")])))
    assert "No claim of the paper was checked in this run folder." in text and cl.BEYOND_TITLE in text
    empty = "\n".join(rp.headline(pd.DataFrame(columns=cl.COLUMNS)))
    assert "No claim of the paper was checked" in empty and cl.BEYOND_TITLE not in empty


# ------------------------------------------------------------------------------------- claim_sections, report
def test_claim_sections_show_power_holm_and_fit(tmp_path):
    record = paired_verdict(BASE, [72.0, 73.1, 73.9])
    fitted = _claim(record, "fit", numbers={"train_top1": 0.9123, "val_top1": 0.85})
    bare = _claim(record, "bare")
    cl.write_claims(tmp_path / "03_x", "03_x", [fitted, bare])
    claims = cl.read_claims(tmp_path)
    text = _squeeze("\n".join(rp.claim_sections(claims)))
    assert ("| dataset | verdict | ours: estimate [CI] | the paper's figure | detectable (80 % power) | "
            "Holm p (dataset) | train / val top-1 (%) | setting |") in text
    # two claims with the same p on one dataset: Holm p = 2p; train / val top-1 in percent
    assert f"| {record.detectable_effect:.3f} | {2 * record.p_value:.3f} | 91.2 / 85.0 | toy |" in text
    assert f"| {2 * record.p_value:.3f} | — | toy |" in text        # no fit numbers: —


def test_build_report_order_headline_what_ran_details(tmp_path):
    cl.write_claims(tmp_path / "01_x", "01_x", [_claim(paired_verdict(BASE, [72.0, 73.1, 73.9]))])
    (tmp_path / "summary.json").write_text(json.dumps(
        {"profile": "quick", "entries": [{"notebook": "01_x", "status": "ok", "duration_s": 12.0}]}))
    report = rp.build_report(tmp_path)
    assert (report.index("## Verdicts on the paper's claims") < report.index("## What ran")
            < report.index("## The paper's claims in detail") < report.index("## Reference numbers"))
    assert "Profile `quick`." in report


# ------------------------------------------------------------------------------------------------ figure links
def test_figure_links_link_existing_figures_per_notebook(tmp_path):
    run = tmp_path / "run"
    cl.write_claims(run / "01_x", "01_marginal_effect", [], figures=["a.png", "missing.png", "b.png"])
    cl.write_claims(run / "02_y", "02_imbalance", [], figures=["gone.png"])      # nothing on disk: no line
    cl.write_claims(run / "05_report", "05_report", [], figures=["r.png"])
    for name in ("01_x/a.png", "01_x/b.png", "05_report/r.png"):
        (run / name).write_bytes(b"png")
    assert rp.figure_links(run, exclude=[run / "05_report"]) == [
        "- 01_marginal_effect: [a.png](01_x/a.png), [b.png](01_x/b.png)"]
    # relative to the report's own folder
    assert rp.figure_links(run, exclude=[run / "05_report"], relative_to=run / "05_report") == [
        "- 01_marginal_effect: [a.png](../01_x/a.png), [b.png](../01_x/b.png)"]
    assert rp.figure_links(run)[-1] == "- 05_report: [r.png](05_report/r.png)"
    assert rp.figure_links(tmp_path / "empty") == []


def test_claim_sections_round_the_papers_figure_beside_a_missing_one(tmp_path):
    record = paired_verdict(BASE, [72.0, 73.1, 73.9])
    cl.write_claims(tmp_path / "02_x", "02_x", [_claim(record, "t1", paper_value=0.9553 - 0.8346),
                                                 {**_claim(record, "t1"), "dataset": "fashion"}])
    text = _squeeze("\n".join(rp.claim_sections(cl.read_claims(tmp_path))))
    rows = [line for line in text.splitlines() if line.startswith(("| mnist", "| fashion"))]
    assert "| 0.121 |" in rows[0] and "0.1207" not in text       # not 0.12070000000000003
    assert "| — |" in rows[1]                                       # no figure of the paper: —
