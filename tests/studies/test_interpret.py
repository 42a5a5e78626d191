"""What a verdict means, in words written from its numbers (semscale_lib.studies.interpret): one paragraph per
claim record built by claims.claim_record from real verdicts records."""
from __future__ import annotations

import numpy as np

from semscale_lib.studies.claims import claim_record
from semscale_lib.studies.interpret import claim_meaning, meaning
from semscale_lib.verdicts import correlation_verdict, paired_verdict, withheld

PAPER = "ImageNet-LT, ResNeXt-50: 44.4 → 49.2"


def _claim(record, **extra):
    return claim_record(claim_id="dsb-ce", claim="DSB-CE beats CE", section="Sec. 4", paper=PAPER,
                        dataset="mnist-lt", data="toy", record=record, **extra)


# gains 2.0, 2.1, 1.9 points: mean 2, CI [+1.75, +2.25], far from 0 (no edge)
HELD = paired_verdict([70.0, 71.0, 72.0], [72.0, 73.1, 73.9])
FIT = {"train_top1": 0.9123, "val_top1": 0.85, "budget_gain": 0.44, "plateaued": True}


def test_held_states_ours_beside_the_papers_figure_the_power_and_the_fit():
    text = claim_meaning(_claim(HELD, paper_value=4.8, numbers=FIT))
    assert text.startswith("**DSB-CE beats CE** (mnist-lt): **held**. ")
    assert (f"Our estimate is +2.00 points (95 % CI [+1.75, +2.25] points); the paper's figure is +4.80 points "
            f"({PAPER}).") in text
    assert ("The whole CI lies on the claim's side of no gain (0): on this data the claim holds at the 95 % level "
            f"(with 3 seeds this design detects an effect of {HELD.detectable_effect:.2f} points or more with 80 % "
            "power).") in text
    assert text.endswith("The models reached training top-1 91.2 % and validation top-1 85.0 % (means over the "
                         "runs); doubling the epochs added +0.4 points of validation top-1 — at the plateau.")
    assert "On the edge" not in text and "not a refutation" not in text


def test_contradicted_correlation_in_r_over_classes():
    x = np.arange(10.0)
    record = correlation_verdict(x, -x ** 1.5)                     # r ≈ −0.99 over 10 classes
    text = claim_meaning(_claim(record, paper_value=0.785))
    assert "**contradicted**" in text
    assert f"Our estimate is {record.estimate:+.2f} (95 % CI [{record.ci_low:+.2f}, {record.ci_high:+.2f}])" in text
    assert "the paper's figure is +0.79" in text and "points" not in text      # r has no unit
    assert ("The whole CI lies on the other side of no correlation (0): on this data the claim fails at the 95 % "
            f"level (with 10 classes this design detects an effect of {record.detectable_effect:.2f} or more") in text


def test_inconclusive_is_not_a_refutation_and_names_what_the_design_detects():
    # gains +1.0, −1.5, +0.5, −0.2: CI [−1.78, +1.68] around 0
    record = paired_verdict([70.0, 71.0, 72.0, 73.0], [71.0, 69.5, 72.5, 72.8])
    claim = _claim(record, paper_value=1.2)
    text = claim_meaning(claim)
    assert record.verdict == "inconclusive"
    assert ("The CI contains both the claim's effect and its absence, so the data decide nothing either way — this "
            f"is not a refutation; with 4 seeds this design detects an effect of {record.detectable_effect:.2f} "
            "points or more with 80 % power.") in text
    # its bounds lie within the tolerance of 0: the edge note follows
    assert claim["edge"] and text.endswith(f"On the edge: {claim['edge']}, so another CPU may give another verdict.")


def test_not_testable_gives_the_reason_and_how_far_from_trained():
    far = withheld(HELD, "models not trained to a plateau")
    numbers = {"train_top1": 0.6, "val_top1": 0.55, "budget_gain": 2.5, "plateaued": False}
    text = claim_meaning(_claim(far, paper_value=4.8, numbers=numbers))
    assert "**not testable**" in text and "Our estimate is +2.00 points (95 % CI [+1.75, +2.25] points)" in text
    assert "No verdict could be formed: models not trained to a plateau." in text
    assert "The whole CI" not in text and "not a refutation" not in text
    assert text.endswith("doubling the epochs added +2.5 points of validation top-1 — not yet at the plateau.")
    # one seed: no CI, and the record's own reason
    single = paired_verdict([70.0], [72.0])
    text = claim_meaning(_claim(single))
    assert "Our estimate is +2.00 points (no confidence interval)." in text
    assert f"No verdict could be formed: {single.reason}." in text


def test_a_ci_wider_than_100_points_reads_as_no_power():
    wide = paired_verdict([50.0, 50.0, 50.0], [90.0, 10.0, 80.0])     # CI [−98.3, +118.3]
    assert "Our estimate is +10.00 points (a CI wider than ±100 points (no power))." in claim_meaning(_claim(wide))


def test_fit_line_only_with_what_the_claim_carries():
    assert "The models reached" not in claim_meaning(_claim(HELD))
    only_val = claim_meaning(_claim(HELD, numbers={"val_top1": 0.5}))
    assert only_val.endswith("The models reached validation top-1 50.0 % (means over the runs).")
    only_gain = claim_meaning(_claim(HELD, numbers={"budget_gain": -0.3, "plateaued": True}))
    # a sentence of its own when no top-1 is carried: capitalised
    assert only_gain.endswith(". Doubling the epochs added -0.3 points of validation top-1 — at the plateau.")


def test_beyond_claims_show_no_paper_figure():
    claim = claim_record(claim_id="q", claim="accuracy rises with W", section="ours", paper="not in the paper",
                         dataset="pooled", data="toy", record=HELD, paper_value=4.8, scope="beyond")
    assert "the paper's figure" not in claim_meaning(claim)


def test_meaning_joins_one_paragraph_per_claim():
    claims = [_claim(HELD), _claim(paired_verdict([70.0], [72.0]))]
    assert meaning(claims) == claim_meaning(claims[0]) + "\n\n" + claim_meaning(claims[1])
    assert meaning([]) == ""
