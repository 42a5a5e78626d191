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


def _squeeze(text: str) -> str:
    """Runs of spaces → one space: DataFrame.to_markdown pads cells to the column width."""
    return re.sub(r" +", " ", text)


# ------------------------------------------------------------------------------------------------ claims and report
def test_claims_roundtrip_and_report(tmp_path):
    a = tmp_path / "01_x"
    a.mkdir()
    pd.DataFrame({"m": [1, 2], "total": [0.5, np.nan]}).to_csv(a / "t.csv", index=False)
    (a / "fig.png").write_bytes(b"png")
    claim = cl.claim_record(claim="it works", section="Sec. 3.3", paper="yes", measured="r = 0.9", data="toy",
                            verdict="held", rule="falsified if not", numbers={"r": np.float64(0.9), "x": np.nan})
    assert claim["section"] == "Sec. 3.3"
    cl.write_claims(a, "01_x", [claim], parameters={"epochs": 2}, figures=["fig.png"],
                    tables=[{"title": "T", "file": "t.csv"}])
    saved = json.loads((a / cl.CLAIMS_FILE).read_text())
    assert saved["claims"][0]["numbers"] == {"r": 0.9, "x": None}
    report_dir = tmp_path / "05_report"
    report_dir.mkdir()
    cl.write_claims(report_dir, "05_report", [claim])
    claims = cl.read_claims(tmp_path, exclude=[report_dir])
    assert len(claims) == 1 and claims.loc[0, "folder"] == "01_x" and claims.loc[0, "verdict"] == "held"
    assert claims.loc[0, "section"] == "Sec. 3.3"
    report = build_report(tmp_path, exclude=[report_dir])
    assert "1 of 1 checks held" in report
    assert "| 1 | 0.500 |" in _squeeze(report) and "undefined" in report
    assert "![fig.png](01_x/fig.png)" in report
    assert "0.8346" in report   # the paper's Table 1
    with pytest.raises(ValueError):
        cl.claim_record(claim="c", section="s", paper="p", measured="m", data="d", verdict="maybe", rule="r")
    with pytest.raises(ValueError):
        cl.write_claims(a, "01_x", [], tables=[{"file": "t.csv"}])


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


def test_thumbnail_shrinks_wide_figures(tmp_path):
    from PIL import Image

    Image.new("RGB", (1600, 400), "white").save(tmp_path / "f.png")
    data = nb.thumbnail(tmp_path / "f.png", width=400)
    with Image.open(io.BytesIO(data)) as small:
        assert small.format == "JPEG" and small.size == (400, 100)
