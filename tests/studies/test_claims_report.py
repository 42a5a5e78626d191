"""Tests of semscale_lib.studies.claims, .report and .notebook: claim records written and read back, the report
(notebook 05), markdown tables, version checks and thumbnails."""
from __future__ import annotations

import io
import json
import re

import numpy as np
import pandas as pd
import pytest

from semscale_lib.studies import claims as cl
from semscale_lib.studies import notebook as nb
from semscale_lib.studies.report import build_report
from semscale_lib.verdicts import paired_verdict


def _squeeze(text: str) -> str:
    """Runs of spaces → one space: DataFrame.to_markdown pads cells to the column width."""
    return re.sub(r" +", " ", text)


# ------------------------------------------------------------------------------------------------ claims and report
BASE = [70.0, 71.0, 72.0, 73.0]


def _record(gain):
    """A paired record of 4 seeds whose per-seed gains are ``gain`` (top-1 points)."""
    return paired_verdict(BASE, [b + g for b, g in zip(BASE, gain)])


HELD = _record([2.0, 2.1, 1.9, 2.0])                  # CI [1.87, 2.13]
CONTRADICTED = _record([-2.0, -2.1, -1.9, -2.0])
INCONCLUSIVE = _record([1.0, -1.5, 0.5, -0.2])
NOT_TESTABLE = paired_verdict([70.0, 71.0], [72.0, 73.5])   # two pairs: a CI, but fewer than 3 seeds


def _claim(claim_id, dataset, record, **extra):
    return cl.claim_record(claim_id=claim_id, claim=f"claim {claim_id}", section="Sec. 4", paper="the paper's words",
                           dataset=dataset, data=f"toy {dataset}", record=record, **extra)


def test_claim_record_takes_everything_from_the_record():
    claim = _claim("x", "mnist", HELD, paper_value=2.05, numbers={"r": np.float64(0.9), "x": np.nan},
                   evidence=[{"source": "pixels", "estimate": 0.5}], figures=["f.png"])
    assert claim["verdict"] == "held" and claim["measured"] == HELD.sentence and claim["rule"] == HELD.rule
    assert (claim["estimate"], claim["ci_low"], claim["ci_high"]) == (HELD.estimate, HELD.ci_low, HELD.ci_high)
    assert claim["numbers"]["kind"] == "paired" and claim["numbers"]["r"] == 0.9
    assert claim["evidence"] == [{"source": "pixels", "estimate": 0.5}] and claim["figures"] == ["f.png"]
    assert claim["paper_value"] == 2.05
    assert set(claim) | {"notebook", "folder"} == set(cl.COLUMNS)


@pytest.mark.parametrize("record", ["held", {"verdict": "held"}, None, HELD.to_dict()])
def test_claim_record_refuses_anything_but_a_verdict_record(record):
    with pytest.raises(TypeError, match="record"):
        _claim("x", "mnist", record)


def _frame(rows):
    """A read_claims-like frame: (claim_id, dataset, verdict) rows, without p-values (bare verdicts in the table)."""
    return pd.DataFrame([{"claim_id": c, "claim": f"claim {c}", "section": f"Sec. {c}", "dataset": d, "verdict": v,
                          "numbers": {}} for c, d, v in rows])


def test_verdict_table_and_counts_two_datasets():
    claims = _frame([("a", "mnist", "held"), ("a", "fashion-mnist", "inconclusive"),
                     ("b", "mnist", "contradicted"), ("c", "fashion-mnist", "not testable")])
    table = cl.verdict_table(claims)
    assert list(table.columns) == ["claim", "section", "mnist", "fashion-mnist"]
    assert table.values.tolist() == [["claim a", "Sec. a", "held", "inconclusive"],
                                     ["claim b", "Sec. b", "contradicted", "—"],
                                     ["claim c", "Sec. c", "—", "not testable"]]
    # not every claim on every dataset: 4 verdicts, not 3 × 2
    assert cl.verdict_counts(claims) == ("4 verdicts on 3 claims across 2 datasets: 1 held, 1 contradicted, "
                                         "1 inconclusive, 1 not testable")
    # zero counts are left out, in VERDICTS order
    assert cl.verdict_counts(claims.iloc[[1, 0]]) == "2 verdicts on 1 claim across 2 datasets: 1 held, 1 inconclusive"
    # two records of one claim on one dataset share the cell
    double = cl.verdict_table(_frame([("a", "mnist", "held"), ("a", "mnist", "contradicted")]))
    assert double.loc[0, "mnist"] == "held, contradicted"


def test_claims_roundtrip(tmp_path):
    a = tmp_path / "01_x"
    claim = _claim("x", "mnist", HELD, numbers={"r": np.float64(0.9), "x": np.nan})
    cl.write_claims(a, "01_x", [claim, _claim("y", "mnist", NOT_TESTABLE)], parameters={"epochs": 2})
    saved = json.loads((a / cl.CLAIMS_FILE).read_text())
    assert saved["claims"][0]["numbers"]["r"] == 0.9 and saved["claims"][0]["numbers"]["x"] is None
    assert saved["claims"][1]["ci_low"] is not None and saved["claims"][1]["verdict"] == "not testable"
    report_dir = tmp_path / "05_report"
    cl.write_claims(report_dir, "05_report", [claim])
    claims = cl.read_claims(tmp_path, exclude=[report_dir])
    assert list(claims.columns) == cl.COLUMNS
    assert len(claims) == 2 and (claims["folder"] == "01_x").all() and (claims["notebook"] == "01_x").all()
    assert claims["verdict"].tolist() == ["held", "not testable"]
    assert claims.loc[0, "ci_low"] == pytest.approx(HELD.ci_low)
    assert list(cl.read_claims(tmp_path / "empty").columns) == cl.COLUMNS
    with pytest.raises(ValueError):
        cl.write_claims(a, "01_x", [], tables=[{"file": "t.csv"}])


def test_build_report_two_datasets(tmp_path):
    mnist, fashion = tmp_path / "01_mnist", tmp_path / "01_fashion"
    cl.write_claims(mnist, "01_marginal_effect", [
        _claim("gain", "mnist", HELD, paper_value=2.05, evidence=[{"source": "pixels", "estimate": 0.25}]),
        _claim("scale", "mnist", CONTRADICTED)], figures=["fig.png"], tables=[{"title": "T", "file": "t.csv"}])
    pd.DataFrame({"m": [1, 2], "total": [0.5, np.nan]}).to_csv(mnist / "t.csv", index=False)
    (mnist / "fig.png").write_bytes(b"png")
    cl.write_claims(fashion, "01_marginal_effect", [_claim("gain", "fashion-mnist", INCONCLUSIVE),
                                                    _claim("scale", "fashion-mnist", NOT_TESTABLE)])
    report_dir = tmp_path / "05_report"
    cl.write_claims(report_dir, "05_report", [_claim("gain", "report-only-dataset", HELD)])
    report = build_report(tmp_path, exclude=[report_dir])
    squeezed = _squeeze(report)
    # read in path order: 01_fashion before 01_mnist
    assert "4 verdicts on 2 claims across 2 datasets: 1 held, 1 contradicted, 1 inconclusive, 1 not testable." in report
    assert "| claim | section | fashion-mnist | mnist |" in squeezed
    # Holm within each dataset, by hand: mnist's two p are equal (p each): 2p, 2p; fashion-mnist's not testable claim
    # is no test of its family, which then holds the inconclusive one alone: p_inc unadjusted
    p, p_inc = HELD.p_value, INCONCLUSIVE.p_value
    assert CONTRADICTED.p_value == pytest.approx(p)
    assert f"| claim gain | Sec. 4 | inconclusive (Holm p {p_inc:.2g}) | held (Holm p {2 * p:.2g}) |" in squeezed
    assert f"| claim scale | Sec. 4 | not testable | contradicted (Holm p {2 * p:.2g}) |" in squeezed
    # one screen of verdicts first, the details after
    assert (report.index("## Verdicts on the paper's claims") < report.index("## The paper's claims in detail")
            < report.index("## Reference numbers"))
    # each claim's headline, with its verdict on every dataset
    assert "### claim gain (Sec. 4)" in report and "### claim scale (Sec. 4)" in report
    assert "Verdict — fashion-mnist: **inconclusive**; mnist: **held**." in report
    assert "Verdict — fashion-mnist: **not testable**; mnist: **contradicted**." in report
    assert f"- *mnist*: {HELD.sentence}" in report and HELD.rule in report
    assert "+2.000 [+1.870, +2.130]" in report and "2.050" in squeezed     # ours beside the paper's figure
    assert "| pixels | 0.250 |" in squeezed                                  # the evidence rows
    assert "report-only-dataset" not in report   # the excluded folder
    assert "Beyond the paper" not in report      # no beyond claims: no such section
    assert "| 1 | 0.500 |" in squeezed and "undefined" in report           # the notebook's table
    assert "![fig.png](01_mnist/fig.png)" in report
    assert "0.8346" in report                                               # the paper's Table 1


def test_scope_defaults_to_paper_and_is_checked():
    assert _claim("x", "mnist", HELD)["scope"] == "paper"
    assert _claim("x", "mnist", HELD, scope="beyond")["scope"] == "beyond"
    with pytest.raises(ValueError, match="scope"):
        _claim("x", "mnist", HELD, scope="ours")


def test_old_claims_without_scope_read_as_paper(tmp_path):
    claim = _claim("x", "mnist", HELD)
    del claim["scope"]                                    # a claims.json written before scopes existed
    cl.write_claims(tmp_path / "01_x", "01_x", [claim])
    claims = cl.read_claims(tmp_path)
    assert claims["scope"].tolist() == ["paper"]
    assert cl.verdict_counts(claims) == "1 verdict on 1 claim across 1 dataset: 1 held"


def test_verdict_table_and_counts_keep_beyond_claims_apart():
    claims = _frame([("a", "mnist", "held"), ("b", "mnist", "contradicted"), ("c", "mnist", "inconclusive")])
    claims["scope"] = ["paper", "beyond", "beyond"]
    assert cl.verdict_counts(claims) == "1 verdict on 1 claim across 1 dataset: 1 held"
    assert cl.verdict_counts(claims, "beyond") == ("2 verdicts on 2 claims across 1 dataset: 1 contradicted, "
                                                   "1 inconclusive")
    assert cl.verdict_table(claims)["claim"].tolist() == ["claim a"]
    assert cl.verdict_table(claims, "beyond")["claim"].tolist() == ["claim b", "claim c"]
    assert len(cl.verdict_table(claims, None)) == 3
    # a frame without a scope column is the paper's
    assert cl.verdict_counts(claims.drop(columns="scope")).startswith("3 verdicts on 3 claims")


def test_build_report_keeps_beyond_claims_in_their_own_section(tmp_path):
    cl.write_claims(tmp_path / "02_x", "02_x", [
        _claim("paper-claim", "mnist", HELD, paper_value=2.05),
        _claim("our-question", "mnist", CONTRADICTED, scope="beyond")])
    report = build_report(tmp_path)
    squeezed = _squeeze(report)
    title = "## Beyond the paper (our questions, not the paper's claims)"
    headline_at, details_at = report.index(title + "\n"), report.index("## The paper's claims in detail")
    beyond_details_at = report.index(title + ": in detail")
    paper_part = report[report.index("## Verdicts on the paper's claims"):headline_at]
    beyond_part = report[headline_at:details_at]
    assert headline_at < details_at < beyond_details_at < report.index("## Reference numbers")
    # the paper's counts, table and Holm family exclude the beyond claim (alone in its family: Holm p = p) ...
    assert "1 verdict on 1 claim across 1 dataset: 1 held." in paper_part
    assert "claim our-question" not in paper_part and "contradicted" not in paper_part
    assert "| claim | section | mnist |" in _squeeze(paper_part)
    assert f"| claim paper-claim | Sec. 4 | held (Holm p {HELD.p_value:.2g}) |" in squeezed
    # ... which has its own counts and table, and its own detail section without a paper figure
    assert "1 verdict on 1 claim across 1 dataset: 1 contradicted." in beyond_part
    assert f"| claim our-question | Sec. 4 | contradicted (Holm p {CONTRADICTED.p_value:.2g}) |" in _squeeze(beyond_part)
    paper_details, beyond_details = report[details_at:beyond_details_at], report[beyond_details_at:]
    assert "### claim paper-claim (Sec. 4)" in paper_details and "claim our-question" not in paper_details
    assert "### claim our-question (Sec. 4)" in beyond_details and "claim paper-claim" not in beyond_details
    assert "Our question, not a claim of the paper." in beyond_details
    row = next(line for line in _squeeze(beyond_details).splitlines() if line.startswith("| mnist | contradicted"))
    assert "| — |" in row                                                   # no paper figure column value
    assert "2.050" in _squeeze(paper_details)                               # the paper claim keeps its figure


def test_build_report_with_only_beyond_claims(tmp_path):
    cl.write_claims(tmp_path / "06_x", "06_x", [_claim("q", "mnist", INCONCLUSIVE, scope="beyond")])
    report = build_report(tmp_path)
    assert "No claim of the paper was checked" in report and "## The paper's claims in detail" not in report
    assert "## Beyond the paper (our questions, not the paper's claims)" in report
    assert "## Beyond the paper (our questions, not the paper's claims): in detail" in report


def test_build_report_without_claims(tmp_path):
    report = build_report(tmp_path)
    assert "No claim of the paper was checked" in report and "## The paper's claims in detail" not in report
    assert "Beyond the paper" not in report


# ---------------------------------------------------------------------------------------- notebook helpers
def test_markdown_table_escapes_and_formats():
    text = nb.markdown_table(pd.DataFrame({"a|b": ["x|y"], "v": [1.23456], "n": [np.nan]}), decimals=2)
    assert _squeeze(text.splitlines()[0]) == "| a|b | v | n |"
    assert "x\\|y" in text and "1.23" in text and "undefined" in text


def test_require_versions():
    installed = nb.require_versions({"numpy": "1.0", "pandas": "1.0"})
    assert set(installed) == {"numpy", "pandas"}
    with pytest.raises(AssertionError, match="older than"):
        nb.require_versions({"numpy": "999.0"})


def test_show_figure_embeds_the_full_png(tmp_path):
    from PIL import Image

    Image.new("RGB", (2250, 1275), "white").save(tmp_path / "f.png")
    shown = nb.show_figure(tmp_path / "f.png")
    assert shown.format == "png" and shown.data[:8] == b"\x89PNG\r\n\x1a\n" and shown.width is None
    with Image.open(io.BytesIO(shown.data)) as full:
        assert full.size == (2250, 1275)                                   # not a thumbnail


def test_save_and_show_refits_class_names(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from semscale_lib import plotting

    names = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
    table = pd.DataFrame({"class": range(10), "name": names, "imbalance_scale": np.linspace(1, 0.1, 10)})
    fig, axes = plt.subplots(1, 2, figsize=(12, 3.8))
    for ax in axes:
        plotting.plot_class_scales(table, ax=ax)
    nb.save_and_show(fig, tmp_path / "f.png", show=False)
    assert (tmp_path / "f.png").exists()
    assert {t.get_rotation() for ax in axes for t in ax.get_xticklabels()} == {45.0}


def test_thumbnail_shrinks_wide_figures(tmp_path):
    from PIL import Image

    Image.new("RGB", (1600, 400), "white").save(tmp_path / "f.png")
    data = nb.thumbnail(tmp_path / "f.png", width=400)
    with Image.open(io.BytesIO(data)) as small:
        assert small.format == "JPEG" and small.size == (400, 100)
