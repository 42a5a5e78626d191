"""The nested training configuration: settings grouped by concern, spoken by their flat names everywhere outside
the code (make_config, the CLI, notebooks, config.json), and run folders written before the nesting read back."""
from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest

from semscale_lib.dsb import DSBSettings
from semscale_lib.training import load_run, make_config, run_config
from semscale_lib.training.config import FLAT_NAMES, GROUPS, TrainConfig, config_names
from semscale_lib.training.flags import flag_group, setting_declarations

#: config.json of a run written by semscale before the settings were nested (a flat dict of 41 settings + dsb).
FLAT_RUN = Path(__file__).parent / "fixtures" / "flat_config_run.json"


def test_settings_are_grouped_by_concern():
    config = make_config("cpu-quick", dataset="digits", loss="ldam", reweight="dsb", dsb_stage_epochs=3, lr=0.3,
                         eval_every=2, ldam_scale=20.0)
    assert (config.data.dataset, config.optim.lr, config.loss.name, config.loss.ldam_scale) == ("digits", 0.3, "ldam",
                                                                                                  20.0)
    assert (config.weighting.rule, config.weighting.dsb.stage_epochs, config.evaluation.every) == ("dsb", 3, 2)
    assert config.model == "cnn-small" and config.preset == "cpu-quick"
    assert isinstance(config.weighting.dsb, DSBSettings)


def test_every_flat_name_maps_to_one_field_and_back():
    targets = [(group, attribute) for group, attribute in FLAT_NAMES.values()]
    assert len(targets) == len(set(targets))                       # one flat name per field
    for group, kind in GROUPS.items():
        fields = {f.name for f in dataclasses.fields(kind)} - {"dsb"}
        assert fields == {attribute for g, attribute in targets if g == group}, group
    top = {f.name for f in dataclasses.fields(TrainConfig)} - set(GROUPS)
    assert top == {attribute for g, attribute in targets if g is None}
    config = make_config("cifar-lt", reweight="drw", class_weights=None)
    again = make_config(**{k: v for k, v in config.to_dict().items() if k != "preset"})
    assert again.to_dict() == {**config.to_dict(), "preset": None}
    assert set(config_names()) == (set(FLAT_NAMES) - {"preset"}) | {"dsb"} | {
        "dsb_" + f.name for f in dataclasses.fields(DSBSettings)}


def test_a_run_folder_written_before_the_nesting_reads_back(tmp_path):
    folder = tmp_path / "old-run"
    folder.mkdir()
    shutil.copy(FLAT_RUN, folder / "config.json")
    (folder / "metrics.csv").write_text("epoch,loss,top1\n1,2.0,0.5\n")
    saved = json.loads(FLAT_RUN.read_text())["config"]
    config = run_config(load_run(folder))
    assert (config.data.dataset, config.optim.epochs, config.weighting.rule, config.weighting.dsb.stage_epochs,
            config.evaluation.every, config.optim.milestones) == ("digits", 16, "dsb", 2, 0, (0.8, 0.9))
    assert config.to_dict() == {**saved, "milestones": (0.8, 0.9)}          # the same settings, so the same run key


def test_the_flags_are_grouped_as_the_config_nests_them():
    names = [name for name, _, _ in setting_declarations()]
    assert flag_group("epochs") == "optimisation" and flag_group("reweight") == "re-weighting / DSB"
    assert flag_group("dsb_alpha") == "re-weighting / DSB" and flag_group("device") == "run / output"
    assert flag_group("model") == "model" and flag_group("eval_every") == "evaluation"
    assert "preset" not in names and len(names) == len(set(names))
    with pytest.raises(ValueError, match="unknown settings"):
        make_config(optim={"epochs": 3})                             # groups are not settings names
